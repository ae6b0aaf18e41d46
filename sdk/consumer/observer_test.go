package consumer_test

import (
	"testing"

	"github.com/shoalmesh/shoal/sdk/consumer"
	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/sdk/observer/observertest"
	"github.com/shoalmesh/shoal/sdk/registry"
)

// TestObserverSeesEndpoints: the reference reports its distinct endpoints
// (a subset repeats the service's) and how many are ready, after every
// update, and none once closed. The observer is observertest's fake.
func TestObserverSeesEndpoints(t *testing.T) {
	rec := observertest.NewRecorder()
	f := &registry.Feed{}
	s := service("1", "10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1")
	s.Services[0].Endpoints[2].Health = mesh.HealthDraining
	s.Services[0].Endpoints[0].Labels = map[string]string{"version": "v1"}
	s.Services[0].Subsets = []mesh.Subset{{Name: "v1", Labels: map[string]string{"version": "v1"}}}
	publish(t, f, s)
	r := newRef(t, f, newNet(), consumer.WithObserver(rec))
	if ready, total, ok := rec.EndpointsOf(svc); !ok || ready != 2 || total != 3 {
		t.Fatalf("endpoints after the first state: ready %d of %d (reported %v), want 2 of 3", ready, total, ok)
	}
	publish(t, f, service("2", "10.0.0.1:1"))
	eventually(t, "the second state's counts", func() bool {
		ready, total, _ := rec.EndpointsOf(svc)
		return ready == 1 && total == 1
	})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if ready, total, _ := rec.EndpointsOf(svc); ready != 0 || total != 0 {
		t.Errorf("after Close: ready %d of %d, want 0 of 0", ready, total)
	}
	if n := rec.Count("endpoints " + svc); n != 3 {
		t.Errorf("%d endpoint reports, want 3 (two states and the close)", n)
	}
}
