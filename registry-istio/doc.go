// Package registryistio connects Shoal applications straight to istiod over
// xDS (ADS). Registry is the sdk registry backed by istiod: consumers
// discover providers by interface name (or an xds:///host:port target), and
// providers confirm that istiod serves them. Builder registers it as the
// "istio" registry kind.
//
// This is the only Shoal module that imports Envoy or Istio types; the work
// is in the subpackages: bootstrap (where istiod is, who this process is),
// xdsresource (validated models of xDS resources), xdsclient (the ADS
// client), xdsmesh (translation into sdk/mesh and a Discovery), mapping (the
// interface-name-to-host convention and its ServiceEntry), xdstest (an
// in-process xDS server for tests) and istiofx (fx wiring). README.md
// explains the design.
package registryistio
