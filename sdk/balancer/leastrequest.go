package balancer

import (
	"fmt"
	"sync/atomic"

	"github.com/shoalmesh/shoal/sdk/mesh"
)

// LeastRequestName is the registry name of LeastRequest.
const LeastRequestName = "least_request"

// WithChoiceCount sets how many random endpoints LeastRequest compares per
// pick (default 2, the power of two choices).
func WithChoiceCount(n int) Option {
	return optionFunc(func(o *options) { o.choiceCount = n })
}

// LeastRequest returns the least-request balancer: each pick draws a few
// endpoints at random (two by default) and takes the one with the fewest
// calls in flight relative to its weight, (active+1)/weight. Counters live
// in the balancer and survive state updates; each pick's Done ends its call.
func LeastRequest(opts ...Option) Builder { return lrBuilder{o: newOptions(opts)} }

type lrBuilder struct{ o options }

func (lrBuilder) Name() string { return LeastRequestName }

func (b lrBuilder) Build(opts BuildOptions) Balancer {
	lb := &lrBalancer{target: opts.Target, src: b.o.source(), choices: b.o.choiceCount, counters: map[string]*inflight{}}
	if b.o.choiceCount < 2 {
		lb.err = fmt.Errorf("balancer %s: choice count %d is below 2; use WithChoiceCount(2) or more", LeastRequestName, b.o.choiceCount)
	}
	return lb
}

type inflight struct{ n atomic.Int64 }

func (c *inflight) done(DoneInfo) { c.n.Add(-1) }

type lrBalancer struct {
	target   string
	src      source
	choices  int
	err      error
	counters map[string]*inflight // by address; touched only under the Handle's lock
}

func (b *lrBalancer) UpdateState(s State) (Picker, error) {
	if b.err != nil {
		return nil, b.err
	}
	if len(s.Endpoints) == 0 {
		return errPicker{err: noEndpoints(b.target, "the endpoint list is empty")}, nil
	}
	p := &lrPicker{
		endpoints: s.Endpoints,
		counters:  make([]*inflight, len(s.Endpoints)),
		dones:     make([]func(DoneInfo), len(s.Endpoints)),
		src:       b.src,
		choices:   b.choices,
	}
	next := make(map[string]*inflight, len(s.Endpoints))
	for i, e := range s.Endpoints {
		c := b.counters[e.Address]
		if c == nil {
			c = &inflight{}
		}
		next[e.Address] = c
		p.counters[i] = c
		p.dones[i] = c.done
	}
	b.counters = next
	return p, nil
}

type lrPicker struct {
	endpoints []*mesh.Endpoint
	counters  []*inflight
	dones     []func(DoneInfo)
	src       source
	choices   int
}

func (p *lrPicker) Pick(info PickInfo) (PickResult, error) {
	n := uint64(len(p.endpoints))
	best := -1
	for range p.choices {
		i := int(p.src.uintn(n))
		if len(info.Tried) > 0 && tried(p.endpoints[i], info.Tried) {
			continue
		}
		if best < 0 || p.less(i, best) {
			best = i
		}
	}
	if best < 0 { // every draw was tried already
		best = int(p.src.uintn(n))
		for i, e := range p.endpoints {
			if !tried(e, info.Tried) {
				best = i
				break
			}
		}
	}
	p.counters[best].n.Add(1)
	return PickResult{Endpoint: p.endpoints[best], Done: p.dones[best]}, nil
}

// less reports whether i is less loaded than j: (a_i+1)/w_i < (a_j+1)/w_j.
func (p *lrPicker) less(i, j int) bool {
	ai, aj := p.counters[i].n.Load()+1, p.counters[j].n.Load()+1
	wi, wj := int64(max(p.endpoints[i].Weight, 1)), int64(max(p.endpoints[j].Weight, 1))
	return ai*wj < aj*wi
}
