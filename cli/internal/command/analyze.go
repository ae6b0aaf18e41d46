package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"
)

type analyzeFlags struct {
	files      []string
	cluster    bool
	kubeconfig string
	output     string
	timeout    time.Duration
}

func newAnalyzeCmd(e *env) *cobra.Command {
	f := &analyzeFlags{}
	cmd := &cobra.Command{
		Use:   "analyze [-f FILE]... [--cluster]",
		Short: "Warn about mesh configuration Shoal's proxyless clients do not get or enforce",
		Long: `Analyze Istio configuration for what a Shoal (proxyless) client never sees or
Shoal does not enforce, as istioctl analyze does for sidecars:

  SHOAL0001  a DestinationRule's outlierDetection (istiod's grpc generator
             does not send it to proxyless clients)
  SHOAL0002  a load balancer the generator drops (simple RANDOM, PASSTHROUGH)
             or Shoal's router does not run (consistent hash on a cookie,
             source IP or query parameter; localityLbSetting)
  SHOAL0003  connectionPool fields other than http.http2MaxRequests
  SHOAL0004  a DestinationRule tls.mode other than ISTIO_MUTUAL (or DISABLE)
  SHOAL0005  a PERMISSIVE PeerAuthentication (proxyless servers stay plaintext)
  SHOAL0006  a DestinationRule subset whose labels none of the host's known
             endpoints carries (ServiceEntry endpoints, WorkloadEntries, Pods
             and Deployments a ServiceEntry or Service selects); hosts whose
             endpoints are unknown are not checked
  SHOAL0007  a VirtualService host that no ServiceEntry or Service carries

-f reads YAML or JSON files (- for stdin) and analyzes their objects alone.
--cluster reads the objects of every namespace from the API server of
--kubeconfig, else $KUBECONFIG, else the control plane 'shoal dev up' runs;
with -f too, the files' objects join the cluster's.

Exit code 0 when there is nothing to warn about, 1 when there are warnings
(or the API server cannot be read), 64 for a wrong command line and 65 for
a file that is not YAML.`,
		Example: `  shoal analyze -f destinationrule.yaml -f virtualservice.yaml
  shoal analyze --cluster -o json
  kubectl get vs,dr,se -A -o yaml | shoal analyze -f -`,
		Args: exactArgs(0, "no arguments (the files go after -f)"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAnalyze(cmd.Context(), e, f)
		},
	}
	cmd.Flags().StringArrayVarP(&f.files, "filename", "f", nil, "a YAML or JSON file of objects, - for stdin; repeatable")
	cmd.Flags().BoolVar(&f.cluster, "cluster", false, "analyze the objects of the API server")
	cmd.Flags().StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of the API server for --cluster (default $KUBECONFIG, else 'shoal dev up''s)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 30*time.Second, "bound on reading the API server")
	addOutputFlag(cmd, &f.output)
	return cmd
}

// analyzeResult is what `shoal analyze -o json|yaml` prints.
type analyzeResult struct {
	Objects  int       `json:"objects"`
	Warnings []finding `json:"warnings"`
}

func runAnalyze(ctx context.Context, e *env, f *analyzeFlags) error {
	if err := checkFormat(f.output); err != nil {
		return err
	}
	if len(f.files) == 0 && !f.cluster {
		return usageErrorf("nothing to analyze: give -f FILE or --cluster")
	}
	var objs []*object
	for _, name := range f.files {
		b, err := readInput(e.stdin, name)
		if err != nil {
			return err
		}
		got, err := decodeObjects(name, b)
		if err != nil {
			return err
		}
		objs = append(objs, got...)
	}
	if f.cluster {
		ctx, cancel := context.WithTimeout(ctx, f.timeout)
		defer cancel()
		got, err := clusterObjects(ctx, f.kubeconfig)
		if err != nil {
			return err
		}
		objs = append(objs, got...)
	}
	warnings, err := analyze(objs)
	if err != nil {
		return err
	}
	res := &analyzeResult{Objects: len(objs), Warnings: warnings}
	if res.Warnings == nil {
		res.Warnings = []finding{}
	}
	if err := printData(e.stdout, f.output, res, res.writeText); err != nil {
		return err
	}
	if len(warnings) > 0 {
		return &exitError{code: ExitError, err: fmt.Errorf("%d warning%s", len(warnings), plural(len(warnings), "", "s"))}
	}
	return nil
}

func (r *analyzeResult) writeText(w io.Writer) error {
	if len(r.Warnings) == 0 {
		_, err := fmt.Fprintf(w, "No issues found in %d object%s.\n", r.Objects, plural(r.Objects, "", "s"))
		return err
	}
	for _, f := range r.Warnings {
		src := ""
		if f.Source != "" {
			src = " " + f.Source
		}
		if _, err := fmt.Fprintf(w, "%s [%s] (%s%s) %s\n", f.Level, f.Code, f.Resource, src, f.Message); err != nil {
			return err
		}
	}
	return nil
}

// decodeObjects reads the objects of a YAML (or JSON) stream of documents;
// a List's items count as objects.
func decodeObjects(name string, b []byte) ([]*object, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []*object
	for doc := 1; ; doc++ {
		var v any
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, dataErrorf("%s: document %d is not YAML: %v", name, doc, err)
		}
		if v == nil {
			continue
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, dataErrorf("%s: document %d: %v", name, doc, err)
		}
		var list struct {
			Kind  string            `json:"kind"`
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, dataErrorf("%s: document %d is not a Kubernetes object: %v", name, doc, err)
		}
		items := []json.RawMessage{raw}
		isList := strings.HasSuffix(list.Kind, "List")
		if isList {
			items = list.Items
		}
		for i, it := range items {
			o := &object{}
			if err := json.Unmarshal(it, o); err != nil {
				return nil, dataErrorf("%s: document %d is not a Kubernetes object: %v", name, doc, err)
			}
			if o.Kind == "" {
				return nil, dataErrorf("%s: document %d has no kind", name, doc)
			}
			o.source = fmt.Sprintf("%s:%d", name, doc)
			if isList {
				o.source = fmt.Sprintf("%s:%d item %d", name, doc, i+1)
			}
			out = append(out, o)
		}
	}
}

// analyzedResources are what --cluster lists.
var analyzedResources = []struct {
	gvr  schema.GroupVersionResource
	kind string
}{
	{schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "serviceentries"}, "ServiceEntry"},
	{schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "destinationrules"}, "DestinationRule"},
	{schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}, "VirtualService"},
	{schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "workloadentries"}, "WorkloadEntry"},
	{schema.GroupVersionResource{Group: "security.istio.io", Version: "v1", Resource: "peerauthentications"}, "PeerAuthentication"},
	{schema.GroupVersionResource{Version: "v1", Resource: "services"}, "Service"},
	{schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "Pod"},
	{schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, "Deployment"},
}

// clusterObjects lists the analyzed kinds in every namespace. A kind the
// server does not serve (no Istio CRDs, say) is left out.
func clusterObjects(ctx context.Context, kubeconfig string) ([]*object, error) {
	if kubeconfig == "" {
		kubeconfig = os.Getenv("KUBECONFIG")
	}
	if kubeconfig == "" {
		p, err := devPathsOrErr()
		if err != nil {
			return nil, err
		}
		st, err := readDevState(p)
		if err != nil {
			return nil, fmt.Errorf("no --kubeconfig or KUBECONFIG, and %w", err)
		}
		kubeconfig = st.Kubeconfig
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, usageErrorf("kubeconfig %s: %v", kubeconfig, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	var out []*object
	for _, r := range analyzedResources {
		list, err := dyn.Resource(r.gvr).List(ctx, metav1.ListOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("list %s at %s: %w", r.gvr.Resource, cfg.Host, err)
		}
		for i := range list.Items {
			raw, err := json.Marshal(list.Items[i].Object)
			if err != nil {
				return nil, err
			}
			o := &object{}
			if err := json.Unmarshal(raw, o); err != nil {
				return nil, err
			}
			o.Kind = r.kind
			out = append(out, o)
		}
	}
	return out, nil
}
