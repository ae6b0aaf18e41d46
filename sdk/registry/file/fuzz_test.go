package file

import (
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/shoalmesh/shoal/sdk/registry"
)

// FuzzParse feeds arbitrary files to the parser: it must never panic, and a
// file it accepts must survive a write and re-read (what Register does) and
// give a snapshot for every key its instances use.
func FuzzParse(f *testing.F) {
	f.Add([]byte("services:\n  s:\n    instances: [{address: '127.0.0.1:1', version: '1'}]\n"))
	f.Add([]byte("services:\n  s:\n    subsets: [{name: a, labels: {v: '1'}}]\n    routes: [{match: [{headers: {x: {regex: 'a.*'}}}], route: [{subset: a}], timeout: 1s, retries: {attempts: 2, retryOn: unavailable}}]\n"))
	f.Add([]byte("services:\n  s:\n    loadBalancer: {kind: ring_hash, hashHeader: x}\n"))
	f.Add([]byte("services: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := parse(data)
		if err != nil {
			return
		}
		out, err := yaml.Marshal(doc)
		if err != nil {
			t.Fatalf("accepted file does not marshal: %v", err)
		}
		if _, err := parse(out); err != nil {
			t.Fatalf("accepted file fails after a rewrite: %v\n%s", err, out)
		}
		for name, svc := range doc.Services {
			for _, k := range keysOf(name, svc) {
				if _, err := doc.snapshot(k); err != nil {
					t.Fatalf("accepted file has no snapshot for %s: %v", k, err)
				}
			}
			if _, err := doc.snapshot(registry.Key{Interface: name, Group: registry.Any, Version: registry.Any}); err != nil {
				t.Fatalf("accepted file has no snapshot for the wildcard key of %s: %v", name, err)
			}
		}
	})
}
