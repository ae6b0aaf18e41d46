// Package sdk is the root of the Shoal SDK module, the part of Shoal that
// applications program against. It holds no code of its own; the API lives in
// its packages:
//
//   - [github.com/shoalmesh/shoal/sdk/app] assembles a provider and its
//     references from a configuration with plain constructors.
//   - [github.com/shoalmesh/shoal/sdk/shoalfx] wires the same pieces with
//     go.uber.org/fx.
//   - [github.com/shoalmesh/shoal/sdk/config] loads and validates shoal.yaml,
//     code options and SHOAL_* environment overrides.
//   - [github.com/shoalmesh/shoal/sdk/provider] and
//     [github.com/shoalmesh/shoal/sdk/consumer] export services and reference
//     them by interface name.
//   - [github.com/shoalmesh/shoal/sdk/registry], with the embedded
//     [github.com/shoalmesh/shoal/sdk/registry/direct] and
//     [github.com/shoalmesh/shoal/sdk/registry/file], are the discovery and
//     registration seams that registry-istio also implements.
//   - [github.com/shoalmesh/shoal/sdk/mesh] is the neutral route and endpoint
//     model that registry-istio fills and router-mesh executes.
//   - [github.com/shoalmesh/shoal/sdk/balancer],
//     [github.com/shoalmesh/shoal/sdk/cluster],
//     [github.com/shoalmesh/shoal/sdk/filter] and
//     [github.com/shoalmesh/shoal/sdk/router] are the pieces of a call.
//   - [github.com/shoalmesh/shoal/sdk/tri] adapts all of it to the Triple
//     protocol of [github.com/shoalmesh/shoal/triple].
//
// The module's README lists every package with what it holds.
package sdk
