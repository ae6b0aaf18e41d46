// Package peer describes a workload as Istio's telemetry sees it and
// carries that description across a call the way Istio's metadata exchange
// does.
//
// A [Workload] is read from the environment Kubernetes and Istio's sidecar
// injector give a pod (POD_NAME, POD_NAMESPACE, ISTIO_META_*, labels), with
// defaults outside Kubernetes. [Workload.Encode] turns it into the value of
// the x-envoy-peer-metadata header: the base64 of a serialized
// google.protobuf.Struct with Istio's node metadata keys (NAME, NAMESPACE,
// WORKLOAD_NAME, LABELS, CLUSTER_ID, ...), which Envoy sidecars and
// grpc-go's CSM observability plugin both send and read. [Decode] reads
// either form: padded base64 (Envoy) and unpadded base64 (grpc-go).
package peer
