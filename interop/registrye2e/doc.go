// Package registrye2e holds the end-to-end tests of registry-istio's
// interface-level discovery against a real control plane (localmesh): two
// istiod replicas, providers of greet.GreetService in containers published
// as Pods behind the interface's ServiceEntry, Shoal consumers that name only
// the interface (or only the providing application, providedBy, through its
// Kubernetes Service), an istiod outage under load, and grpc-go's own xDS client
// calling a Shoal provider through istiod. TestFollowIstiod checks that the
// registry follows istiod where it used to lose it: VirtualService
// headers.request edits reaching the providers, references closed and
// reopened, and a change applied right after istiod restarts. TestSyncz
// checks that istiod's syncz (what istioctl proxy-status reads) lists a
// Shoal client with its listener, routes, cluster and endpoints SYNCED, and
// that the cli's shoal status reports it.
package registrye2e
