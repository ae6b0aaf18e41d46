// Package plugin is the small named-set type behind the sdk's instance-level
// plug-in registries (balancers, discoveries, filters, routers).
package plugin
