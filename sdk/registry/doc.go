// Package registry defines how providers announce themselves and how
// consumers find them, in three small verbs after kratos: a [Registrar]
// registers and deregisters a provider's [Instance]; a [Discovery] watches
// an interface (plus group and version) and returns a [Watcher], whose Next
// delivers a [mesh.Snapshot] of endpoints and routes each time they change.
//
// Implementations are plug-ins: a named [Builder] makes a [Registry] from a
// [Config] (an address and parameters, as written in shoal.yaml). Builders
// are registered per application in a [Builders] set, or globally in
// [Default]. Two ship with the sdk: registry/direct (a static list of
// tri:// URLs) and registry/file (a YAML file, watched and hot-reloaded).
// registry-istio plugs in the same way.
package registry
