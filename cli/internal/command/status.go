package command

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
)

// Defaults of the node `shoal status` presents to istiod: istiod answers
// debug requests from istio-system's ServiceAccounts.
const (
	statusPodName   = "shoal-status"
	statusNamespace = "istio-system"
)

// clientStatus is one line of `shoal status`.
type clientStatus struct {
	xdsclient.ProxySync
	Synced bool `json:"synced"`
}

func newStatusCmd(e *env) *cobra.Command {
	var (
		output  string
		xds     string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "List the xDS clients istiod knows and whether each is in sync",
		Long: `List the xDS clients connected to istiod and, for each resource type a
client watches, whether it has acked what istiod last sent (SYNCED), not yet
(STALE), rejected it (ERROR) or was sent nothing (NOT_SENT): istiod's syncz,
the istio.io/debug/syncz resource istioctl proxy-status reads. Shoal clients
are listed from registry-istio's node metadata (PROXY_CONFIG).

istiod is at --xds, else SHOAL_XDS_ADDRESS. istiod answers only an
authenticated caller by default (ENABLE_DEBUG_ENDPOINT_AUTH): use its TLS port
(15012, or SHOAL_XDS_TLS=true on another port) with SHOAL_XDS_ROOT_CERT and
SHOAL_XDS_TOKEN, a token (audience
istio-ca) of a ServiceAccount in istio-system, or of another namespace to see
only that namespace's clients. The node shoal presents is POD_NAME
(default shoal-status) in POD_NAMESPACE (default istio-system) with
SERVICE_ACCOUNT, which must be the token's.`,
		Example: `  SHOAL_XDS_ROOT_CERT=root-cert.pem SHOAL_XDS_TOKEN=istio-token SERVICE_ACCOUNT=shoal-status \
    shoal status --xds 127.0.0.1:15012
  shoal status -o json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			cfg, err := statusBootstrap(xds)
			if err != nil {
				return usageErrorf("%w", err)
			}
			ctx, cancel := cmd.Context(), context.CancelFunc(func() {})
			if timeout > 0 {
				ctx, cancel = context.WithTimeout(ctx, timeout)
			}
			defer cancel()
			ps, err := xdsclient.Syncz(ctx, cfg)
			if err != nil {
				return statusError(err)
			}
			rows := make([]clientStatus, 0, len(ps))
			for _, p := range ps {
				rows = append(rows, clientStatus{ProxySync: p, Synced: p.Synced()})
			}
			return printData(e.stdout, output, rows, func(w io.Writer) error { return writeStatusTable(w, rows) })
		},
	}
	cmd.Flags().StringVar(&xds, "xds", "", "istiod's xDS address host:port (default $SHOAL_XDS_ADDRESS)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "bound on the query; 0 for none")
	addOutputFlag(cmd, &output)
	return cmd
}

// statusBootstrap is registry-istio's bootstrap from the environment, with
// istiod at xds when given and the node defaults of `shoal status`.
func statusBootstrap(xds string) (*bootstrap.Config, error) {
	environ := os.Environ()
	if xds != "" {
		environ = append(environ, bootstrap.EnvAddress+"="+xds)
	} else if os.Getenv(bootstrap.EnvAddress) == "" {
		return nil, fmt.Errorf("no istiod address: pass --xds host:port or set %s", bootstrap.EnvAddress)
	}
	if os.Getenv("POD_NAME") == "" {
		environ = append(environ, "POD_NAME="+statusPodName)
	}
	if os.Getenv("POD_NAMESPACE") == "" {
		environ = append(environ, "POD_NAMESPACE="+statusNamespace)
	}
	if os.Getenv("INSTANCE_IP") == "" {
		environ = append(environ, "INSTANCE_IP=127.0.0.1")
	}
	return bootstrap.FromEnv(environ)
}

// statusError keeps registry-istio's message and exits with the gRPC code
// of the failed query, as call does.
func statusError(err error) error {
	if c := grpcstatus.Code(err); c != codes.OK && c != codes.Unknown {
		return &exitError{code: int(c), err: err}
	}
	return err
}

// writeStatusTable prints one row per client: its ID, cluster, whether it
// is in sync and each type's state by short name (CDS, LDS, RDS, EDS).
func writeStatusTable(w io.Writer, rows []clientStatus) error {
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "istiod knows no xDS client with PROXY_CONFIG metadata")
		return err
	}
	if _, err := fmt.Fprintf(w, "%-40s %-12s %-6s %s\n", "CLIENT", "CLUSTER", "SYNCED", "TYPES"); err != nil {
		return err
	}
	for _, r := range rows {
		types := make([]string, 0, len(r.Types))
		for _, t := range r.Types {
			s := shortType(t.TypeURL) + "=" + t.State
			if t.Error != "" {
				s += " (" + t.Error + ")"
			}
			types = append(types, s)
		}
		synced := "no"
		if r.Synced {
			synced = "yes"
		}
		if _, err := fmt.Fprintf(w, "%-40s %-12s %-6s %s\n", r.ID, r.ClusterID, synced, strings.Join(types, " ")); err != nil {
			return err
		}
	}
	return nil
}

// shortType names the xDS types as istioctl does, and others by the last
// element of their type URL.
func shortType(url string) string {
	switch path.Base(url) {
	case "envoy.config.cluster.v3.Cluster":
		return "CDS"
	case "envoy.config.listener.v3.Listener":
		return "LDS"
	case "envoy.config.route.v3.RouteConfiguration":
		return "RDS"
	case "envoy.config.endpoint.v3.ClusterLoadAssignment":
		return "EDS"
	case "envoy.extensions.transport_sockets.tls.v3.Secret":
		return "SDS"
	}
	return path.Base(url)
}
