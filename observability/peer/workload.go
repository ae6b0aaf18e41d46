package peer

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// The headers of Istio's metadata exchange.
const (
	// HeaderMetadata carries the base64 of a serialized
	// google.protobuf.Struct describing the sender.
	HeaderMetadata = "x-envoy-peer-metadata"
	// HeaderID carries the sender's node ID
	// (sidecar~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local).
	HeaderID = "x-envoy-peer-metadata-id"
)

// The Struct keys of Istio's node metadata that telemetry reads.
const (
	keyName           = "NAME"
	keyNamespace      = "NAMESPACE"
	keyWorkloadName   = "WORKLOAD_NAME"
	keyLabels         = "LABELS"
	keyClusterID      = "CLUSTER_ID"
	keyMeshID         = "MESH_ID"
	keyServiceAccount = "SERVICE_ACCOUNT"
	keyOwner          = "OWNER"
	keyInstanceIPs    = "INSTANCE_IPS"
	keyAppContainers  = "APP_CONTAINERS"
)

// The pod labels Istio's canonical service rules read.
const (
	LabelApp                = "app"
	LabelVersion            = "version"
	LabelCanonicalName      = "service.istio.io/canonical-name"
	LabelCanonicalRevision  = "service.istio.io/canonical-revision"
	labelKubernetesName     = "app.kubernetes.io/name"
	labelKubernetesVersion  = "app.kubernetes.io/version"
	defaultClusterID        = "Kubernetes"
	defaultNamespace        = "default"
	defaultServiceAccount   = "default"
	defaultTrustDomain      = "cluster.local"
	defaultCanonicalVersion = "latest"
)

// Workload is what Istio's telemetry knows about one side of a call.
type Workload struct {
	// Name is the pod (instance) name.
	Name string
	// Namespace is the Kubernetes namespace.
	Namespace string
	// WorkloadName is the Deployment (or other owner) name.
	WorkloadName string
	// Labels are the pod's labels (app, version, canonical service ...).
	Labels map[string]string
	// ClusterID names the Kubernetes cluster (Istio's default "Kubernetes").
	ClusterID string
	// MeshID names the mesh; empty when not set.
	MeshID string
	// ServiceAccount is the pod's Kubernetes service account.
	ServiceAccount string
	// Owner is the owner reference, e.g. kubernetes://apis/apps/v1/namespaces/NS/deployments/NAME.
	Owner string
	// InstanceIP is the pod IP, used in the node ID.
	InstanceIP string
	// TrustDomain is the SPIFFE trust domain of principals (default cluster.local).
	TrustDomain string
}

// FromEnv reads the workload from the environment a Kubernetes pod with
// Istio's injection has, with defaults elsewhere:
//
//   - POD_NAME (default: the host name), POD_NAMESPACE (default "default"),
//     INSTANCE_IP, SERVICE_ACCOUNT (default "default"), TRUST_DOMAIN
//     (default "cluster.local");
//   - ISTIO_META_WORKLOAD_NAME (default: the executable's name),
//     ISTIO_META_CLUSTER_ID (default "Kubernetes"), ISTIO_META_MESH_ID,
//     ISTIO_META_OWNER;
//   - labels from ISTIO_METAJSON_LABELS (a JSON object, as pilot-agent
//     reads it), then APP and VERSION, then CANONICAL_SERVICE and
//     CANONICAL_REVISION, each setting its label when present.
func FromEnv() (Workload, error) { return FromLookup(os.LookupEnv) }

// FromLookup is FromEnv reading variables through lookup, for tests and
// for configuration layers that are not the process environment.
func FromLookup(lookup func(string) (string, bool)) (Workload, error) {
	get := func(k, def string) string {
		if v, ok := lookup(k); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	host, _ := os.Hostname()
	exe := "shoal"
	if p, err := os.Executable(); err == nil {
		exe = strings.TrimSuffix(filepath.Base(p), ".test")
	}
	w := Workload{
		Name:           get("POD_NAME", host),
		Namespace:      get("POD_NAMESPACE", defaultNamespace),
		WorkloadName:   get("ISTIO_META_WORKLOAD_NAME", exe),
		ClusterID:      get("ISTIO_META_CLUSTER_ID", defaultClusterID),
		MeshID:         get("ISTIO_META_MESH_ID", ""),
		ServiceAccount: get("SERVICE_ACCOUNT", defaultServiceAccount),
		Owner:          get("ISTIO_META_OWNER", ""),
		InstanceIP:     get("INSTANCE_IP", ""),
		TrustDomain:    get("TRUST_DOMAIN", defaultTrustDomain),
		Labels:         map[string]string{},
	}
	if js := get("ISTIO_METAJSON_LABELS", ""); js != "" {
		if err := json.Unmarshal([]byte(js), &w.Labels); err != nil {
			return Workload{}, fmt.Errorf("peer: ISTIO_METAJSON_LABELS is not a JSON object of strings: %w; set it like {\"app\":\"greeter\",\"version\":\"v1\"}", err)
		}
	}
	for env, label := range map[string]string{
		"APP": LabelApp, "VERSION": LabelVersion,
		"CANONICAL_SERVICE": LabelCanonicalName, "CANONICAL_REVISION": LabelCanonicalRevision,
	} {
		if v := get(env, ""); v != "" {
			w.Labels[label] = v
		}
	}
	if w.Name == "" {
		w.Name = w.WorkloadName
	}
	return w, nil
}

// App is the app label, or "unknown" as Istio reports it.
func (w *Workload) App() string { return labelOr(w.Labels, "unknown", LabelApp) }

// Version is the version label, or "unknown".
func (w *Workload) Version() string { return labelOr(w.Labels, "unknown", LabelVersion) }

// CanonicalService follows Istio's rule: the canonical-name label, else
// app.kubernetes.io/name, else app, else the workload name.
func (w *Workload) CanonicalService() string {
	return labelOr(w.Labels, w.WorkloadName, LabelCanonicalName, labelKubernetesName, LabelApp)
}

// CanonicalRevision follows Istio's rule: the canonical-revision label,
// else app.kubernetes.io/version, else version, else "latest".
func (w *Workload) CanonicalRevision() string {
	return labelOr(w.Labels, defaultCanonicalVersion, LabelCanonicalRevision, labelKubernetesVersion, LabelVersion)
}

// Principal is the workload's SPIFFE identity,
// spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/SERVICE_ACCOUNT.
func (w *Workload) Principal() string {
	td := w.TrustDomain
	if td == "" {
		td = defaultTrustDomain
	}
	return "spiffe://" + td + "/ns/" + w.Namespace + "/sa/" + w.ServiceAccount
}

// NodeID is the workload's Envoy-style node ID, sent as
// x-envoy-peer-metadata-id: sidecar~IP~NAME.NAMESPACE~NAMESPACE.svc.cluster.local.
func (w *Workload) NodeID() string {
	return "sidecar~" + w.InstanceIP + "~" + w.Name + "." + w.Namespace + "~" + w.Namespace + ".svc.cluster.local"
}

func labelOr(labels map[string]string, def string, keys ...string) string {
	for _, k := range keys {
		if v := labels[k]; v != "" {
			return v
		}
	}
	if def == "" {
		return "unknown"
	}
	return def
}

// Encode returns the x-envoy-peer-metadata value describing w: padded
// base64 of the serialized Struct, as Envoy sends it.
func (w *Workload) Encode() (string, error) {
	fields := map[string]*structpb.Value{}
	str := func(k, v string) {
		if v != "" {
			fields[k] = structpb.NewStringValue(v)
		}
	}
	str(keyName, w.Name)
	str(keyNamespace, w.Namespace)
	str(keyWorkloadName, w.WorkloadName)
	str(keyClusterID, w.ClusterID)
	str(keyMeshID, w.MeshID)
	str(keyServiceAccount, w.ServiceAccount)
	str(keyOwner, w.Owner)
	if w.InstanceIP != "" {
		fields[keyInstanceIPs] = structpb.NewStringValue(w.InstanceIP)
	}
	if len(w.Labels) > 0 {
		ls := &structpb.Struct{Fields: make(map[string]*structpb.Value, len(w.Labels))}
		for k, v := range w.Labels {
			ls.Fields[k] = structpb.NewStringValue(v)
		}
		fields[keyLabels] = structpb.NewStructValue(ls)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&structpb.Struct{Fields: fields})
	if err != nil {
		return "", fmt.Errorf("peer: encode metadata: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// Decode reads an x-envoy-peer-metadata value, padded (Envoy) or not
// (grpc-go's CSM plugin). Missing keys stay empty.
func Decode(v string) (Workload, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return Workload{}, errors.New("peer: empty x-envoy-peer-metadata")
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(v, "="))
	}
	if err != nil {
		return Workload{}, fmt.Errorf("peer: x-envoy-peer-metadata is not base64: %w", err)
	}
	var s structpb.Struct
	if err := proto.Unmarshal(b, &s); err != nil {
		return Workload{}, fmt.Errorf("peer: x-envoy-peer-metadata is not a serialized google.protobuf.Struct: %w", err)
	}
	get := func(k string) string { return s.GetFields()[k].GetStringValue() }
	w := Workload{
		Name: get(keyName), Namespace: get(keyNamespace), WorkloadName: get(keyWorkloadName),
		ClusterID: get(keyClusterID), MeshID: get(keyMeshID), ServiceAccount: get(keyServiceAccount),
		Owner: get(keyOwner), InstanceIP: firstIP(s.GetFields()[keyInstanceIPs]),
	}
	if ls := s.GetFields()[keyLabels].GetStructValue(); ls != nil {
		w.Labels = make(map[string]string, len(ls.GetFields()))
		for k, v := range ls.GetFields() {
			w.Labels[k] = v.GetStringValue()
		}
	}
	fromCSM(&w, get)
	return w, nil
}

// firstIP reads INSTANCE_IPS, a comma-separated string in Envoy's node
// metadata (a list in some senders).
func firstIP(v *structpb.Value) string {
	if l := v.GetListValue(); l != nil && len(l.GetValues()) > 0 {
		return l.GetValues()[0].GetStringValue()
	}
	ip, _, _ := strings.Cut(v.GetStringValue(), ",")
	return ip
}

// fromCSM fills what is still empty from the keys grpc-go's CSM plugin
// sends instead of Istio's (workload_name, namespace_name, cluster_name,
// canonical_service).
func fromCSM(w *Workload, get func(string) string) {
	if w.WorkloadName == "" {
		w.WorkloadName = get("workload_name")
	}
	if w.Namespace == "" {
		w.Namespace = get("namespace_name")
	}
	if w.ClusterID == "" {
		w.ClusterID = get("cluster_name")
	}
	if cs := get("canonical_service"); cs != "" {
		if w.Labels == nil {
			w.Labels = map[string]string{}
		}
		if w.Labels[LabelCanonicalName] == "" {
			w.Labels[LabelCanonicalName] = cs
		}
	}
}
