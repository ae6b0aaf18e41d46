package config_test

import (
	"fmt"

	"github.com/shoalmesh/shoal/sdk/config"
)

func ExampleLoad() {
	cfg, err := config.Load(
		config.WithYAML("shoal.yaml", []byte(`
application: {name: greeter-client}
references:
  - interface: greet.GreetService
    version: 1.0.0
`)),
		config.WithEnv(func(name string) (string, bool) {
			if name == "SHOAL_REFERENCES_0_TIMEOUT" { // as if exported in the shell
				return "1s", true
			}
			return "", false
		}),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	r, _ := cfg.Reference("greet.GreetService")
	fmt.Println(cfg.Application.Name, r.Interface, r.Version, r.Timeout, r.Balancer, r.Registry)

	_, err = config.Load(config.WithYAML("shoal.yaml", []byte("references: [{version: 1.0.0}]")), config.WithEnv(func(string) (string, bool) { return "", false }))
	fmt.Println(err)
	// Output:
	// greeter-client greet.GreetService 1.0.0 1s round_robin default
	// shoal.yaml: references[0].interface: empty; set it to the service's interface name such as greet.GreetService
}
