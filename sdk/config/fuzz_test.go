package config_test

import (
	"testing"

	"github.com/shoalmesh/shoal/sdk/config"
)

// FuzzLoad: arbitrary shoal.yaml files never panic, and an accepted file
// has every default filled in.
func FuzzLoad(f *testing.F) {
	f.Add([]byte("application: {name: a}\nreferences: [{interface: greet.GreetService, timeout: 1s}]\n"))
	f.Add([]byte("services: [{interface: a, protocols: [tri], registries: [default]}]\n"))
	f.Add([]byte("protocols: [{port: 70000}]\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Load(config.WithYAML("shoal.yaml", data), config.WithEnv(noEnv))
		if err != nil {
			return
		}
		if c.Application.Name == "" || len(c.Registries) == 0 || len(c.Protocols) == 0 {
			t.Fatalf("accepted config without defaults: %+v", c)
		}
		for _, r := range c.References {
			if r.Retries == nil || r.Balancer == "" || r.Cluster == "" || (r.Registry == "" && r.URL == "") {
				t.Fatalf("reference without defaults: %+v", r)
			}
		}
	})
}
