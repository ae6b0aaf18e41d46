// Package registryistio is the root of the registry-istio module, which
// connects Shoal applications straight to istiod over xDS (ADS) and
// translates Envoy and Istio resources into the neutral traffic model of the
// sdk module. It is the only Shoal module that imports Envoy or Istio types.
//
// The work is in the subpackages: bootstrap (where istiod is, who this
// process is), xdsresource (validated models of xDS resources), xdsclient
// (the ADS client), xdsmesh (translation into sdk/mesh and an sdk
// Discovery), xdstest (an in-process xDS server for tests) and istiofx (fx
// wiring). See README.md for the design.
package registryistio
