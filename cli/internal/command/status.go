package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/shoalmesh/shoal/localmesh"
	"github.com/shoalmesh/shoal/registry-istio/bootstrap"
	"github.com/shoalmesh/shoal/registry-istio/xdsclient"
)

// Defaults of the node `shoal status` presents to istiod: istiod answers
// debug requests from istio-system's ServiceAccounts.
const (
	statusPodName   = "shoal-status"
	statusNamespace = "istio-system"
	// statusServiceAccount is the ServiceAccount whose token `shoal
	// status` presents to the istiod of 'shoal dev up'.
	statusServiceAccount = "shoal-status"
	// statusTokenTTL is the TokenRequest API's shortest lifetime.
	statusTokenTTL = 10 * time.Minute
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

istiod is at --xds, else SHOAL_XDS_ADDRESS, else the control plane of
'shoal dev up'. istiod answers only an authenticated caller by default
(ENABLE_DEBUG_ENDPOINT_AUTH): use its TLS port (15012, or SHOAL_XDS_TLS=true
on another port) with SHOAL_XDS_ROOT_CERT and SHOAL_XDS_TOKEN, a token
(audience istio-ca) of a ServiceAccount in istio-system, or of another
namespace to see only that namespace's clients. The node shoal presents is
POD_NAME (default shoal-status) in POD_NAMESPACE (default istio-system) with
SERVICE_ACCOUNT, which must be the token's.

Against 'shoal dev up' (no --xds, no SHOAL_XDS_ADDRESS) nothing needs
setting: shoal creates the ServiceAccount shoal-status in istio-system, mints
a 10-minute token of it (audience istio-ca) through the control plane's
kubeconfig, reads the root certificate from the istio-ca-root-cert
ConfigMap, keeps both (mode 0600) in shoal dev's directory, and asks
istiod's TLS port as that ServiceAccount (POD_NAMESPACE and SERVICE_ACCOUNT
are set to match the token).`,
		Example: `  shoal dev up && shoal status
  SHOAL_XDS_ROOT_CERT=root-cert.pem SHOAL_XDS_TOKEN=istio-token SERVICE_ACCOUNT=shoal-status \
    shoal status --xds 127.0.0.1:15012
  shoal status -o json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			ctx, cancel := cmd.Context(), context.CancelFunc(func() {})
			if timeout > 0 {
				ctx, cancel = context.WithTimeout(ctx, timeout)
			}
			defer cancel()
			cfg, err := statusBootstrap(ctx, xds)
			if err != nil {
				return err
			}
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
	cmd.Flags().StringVar(&xds, "xds", "", "istiod's xDS address host:port (default $SHOAL_XDS_ADDRESS, else 'shoal dev up''s TLS port)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "bound on the query; 0 for none")
	addOutputFlag(cmd, &output)
	return cmd
}

// statusBootstrap is registry-istio's bootstrap from the environment, with
// istiod at xds when given, else at SHOAL_XDS_ADDRESS, else the TLS port of
// the control plane of 'shoal dev up' (devStatusEnv), and the node defaults
// of `shoal status`.
func statusBootstrap(ctx context.Context, xds string) (*bootstrap.Config, error) {
	environ := os.Environ()
	switch {
	case xds != "":
		environ = append(environ, bootstrap.EnvAddress+"="+xds)
	case os.Getenv(bootstrap.EnvAddress) != "":
	default:
		dev, err := devStatusEnv(ctx)
		if err != nil {
			return nil, err
		}
		environ = append(environ, dev...)
	}
	for _, d := range [][2]string{{"POD_NAME", statusPodName}, {"POD_NAMESPACE", statusNamespace}, {"INSTANCE_IP", "127.0.0.1"}} {
		if os.Getenv(d[0]) == "" {
			environ = append(environ, d[0]+"="+d[1])
		}
	}
	cfg, err := bootstrap.FromEnv(environ)
	if err != nil {
		return nil, usageErrorf("%w", err)
	}
	return cfg, nil
}

// devStatusEnv is the environment that lets `shoal status` ask the istiod
// of 'shoal dev up' on its TLS port: the ServiceAccount shoal-status in
// istio-system (created if missing), a short-lived token of it and the
// mesh's root certificate, written into shoal dev's directory.
func devStatusEnv(ctx context.Context) ([]string, error) {
	p, st, err := runningDevState()
	if errors.Is(err, errDevNotRunning) {
		return nil, usageErrorf("no istiod address: pass --xds host:port or set %s, or start a local control plane with 'shoal dev up'", bootstrap.EnvAddress)
	}
	if err != nil {
		return nil, err
	}
	if st.XDSTLSAddress == "" {
		return nil, fmt.Errorf("the running 'shoal dev up' (pid %d) recorded no TLS port of istiod (an older shoal started it); restart it with 'shoal dev down' and 'shoal dev up', or pass --xds", st.PID)
	}
	c, err := localmesh.NewClient(st.Kubeconfig)
	if err != nil {
		return nil, err
	}
	if err := c.CreateServiceAccount(ctx, statusNamespace, statusServiceAccount); err != nil {
		return nil, err
	}
	token, err := c.ServiceAccountToken(ctx, statusNamespace, statusServiceAccount, localmesh.IstioCAAudience, statusTokenTTL)
	if err != nil {
		return nil, err
	}
	root, err := c.RootCert(ctx, statusNamespace)
	if err != nil {
		return nil, err
	}
	tokenFile, rootFile := p.statusToken(), p.statusRootCert()
	if err := writePrivate(tokenFile, []byte(token)); err != nil {
		return nil, fmt.Errorf("write the token of shoal status: %w", err)
	}
	if err := writePrivate(rootFile, root); err != nil {
		return nil, fmt.Errorf("write the root certificate of shoal status: %w", err)
	}
	return []string{
		bootstrap.EnvAddress + "=" + st.XDSTLSAddress, bootstrap.EnvTLS + "=true",
		bootstrap.EnvServerName + "=" + localmesh.IstiodServerName,
		bootstrap.EnvRootCert + "=" + rootFile, bootstrap.EnvToken + "=" + tokenFile,
		"SERVICE_ACCOUNT=" + statusServiceAccount, "POD_NAMESPACE=" + statusNamespace,
	}, nil
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
