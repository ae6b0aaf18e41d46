// Package app assembles a Shoal application from a config.Config with
// plain constructors: it builds the registries, the filter chains, one
// consumer.Reference per configured reference and a provider.Provider for
// the configured services, and starts and stops them in order.
//
// The wire protocol comes in through two seams: a consumer.Transport for
// references and a server factory for protocols (the Triple adapter
// provides both). Plug-ins (registry kinds, balancers, routing engines, filters)
// are looked up in instance-level sets given as options, falling back to
// the packages' global defaults.
//
// The built-in "log" filters (filter.ClientLogging, filter.ServerLogging)
// are always registered, so a configuration can list them:
// filters: {client: [log], server: [log]}.
//
// Start order: registries are opened by New; Start starts the servers,
// registers the services, then starts the references. Stop reverses it:
// deregister, drain, shut the servers down, close the references, close
// the registries.
package app
