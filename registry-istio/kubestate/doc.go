// Package kubestate writes a provider's registration into the Kubernetes API
// server as Istio-native state, and removes it again: the ServiceEntry that
// carries the interface-name hosts of package mapping, shared by every
// replica of an application, and, for a workload that is not a Pod, a
// WorkloadEntry with its address and port.
//
// Every replica is an owner of the shared ServiceEntry (an ownerReference to
// its Pod or WorkloadEntry, plus an annotation listing the hosts it
// serves). Register adds the replica; Deregister removes it and deletes the
// ServiceEntry only when no owner is left. Writes use optimistic
// concurrency (resourceVersion), so replicas registering and leaving at the
// same time never delete an entry another replica still uses, and
// Kubernetes' garbage collector deletes the entry when its last owner
// disappears without deregistering (a deleted Pod).
//
// A ServiceEntry of the same name that was not written by this package (a
// GitOps entry from the chart) is left untouched: the pre-declared path
// keeps working and wins.
package kubestate
