package xdstest

import "fmt"

// ScaleHost is the host of service i in ManyServices.
func ScaleHost(i int) string { return fmt.Sprintf("svc-%04d.default.svc.cluster.local", i) }

// ScalePort is the port of every service in ManyServices.
const ScalePort = 8080

// ManyServices returns a state of services x endpointsPer, for scale tests:
// service i is ScaleHost(i):ScalePort with its listener, route
// configuration, cluster and endpoints spread over three zones. Every
// endpoint address and every cluster depend on gen, so the state for a new
// gen is a full update of the clusters and endpoints (listeners and routes
// stay the same, as in a typical istiod push).
func ManyServices(services, endpointsPer, gen int) Resources {
	var all Resources
	for s := range services {
		eps := make([]Endpoint, endpointsPer)
		for e := range eps {
			n := s*endpointsPer + e
			eps[e] = Endpoint{
				// Loopback addresses: a client that connects reaches
				// nothing but this machine.
				IP:       fmt.Sprintf("127.%d.%d.%d", gen%200, n/250, 1+n%250),
				Port:     ScalePort,
				Locality: Locality{Region: "r", Zone: fmt.Sprintf("z%d", e%3)},
				Labels:   map[string]string{"app": "svc", "version": "v1"},
			}
		}
		r := Service(ScaleHost(s), ScalePort, eps...)
		WithMaxRequests(r.Clusters[0], uint32(100+gen))
		all.Listeners = append(all.Listeners, r.Listeners...)
		all.Routes = append(all.Routes, r.Routes...)
		all.Clusters = append(all.Clusters, r.Clusters...)
		all.Endpoints = append(all.Endpoints, r.Endpoints...)
	}
	return all
}
