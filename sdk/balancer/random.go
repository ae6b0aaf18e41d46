package balancer

import "github.com/shoalmesh/shoal/sdk/mesh"

// RandomName is the registry name of Random.
const RandomName = "random"

// Random returns the weighted random balancer: each pick chooses endpoint i
// with probability w_i / sum(w).
func Random(opts ...Option) Builder { return randomBuilder{o: newOptions(opts)} }

type randomBuilder struct{ o options }

func (randomBuilder) Name() string { return RandomName }

func (b randomBuilder) Build(opts BuildOptions) Balancer {
	return &randomBalancer{target: opts.Target, src: b.o.source()}
}

type randomBalancer struct {
	target string
	src    source
}

func (b *randomBalancer) UpdateState(s State) (Picker, error) {
	if len(s.Endpoints) == 0 {
		return errPicker{err: noEndpoints(b.target, "the endpoint list is empty")}, nil
	}
	p := &randomPicker{endpoints: s.Endpoints, src: b.src}
	if !equalWeights(s.Endpoints) {
		p.cumulative = make([]uint64, len(s.Endpoints))
		var sum uint64
		for i, e := range s.Endpoints {
			sum += uint64(max(e.Weight, 1))
			p.cumulative[i] = sum
		}
	}
	return p, nil
}

type randomPicker struct {
	endpoints  []*mesh.Endpoint
	cumulative []uint64 // nil when weights are equal
	src        source
}

func (p *randomPicker) draw() *mesh.Endpoint {
	if p.cumulative == nil {
		return p.endpoints[p.src.uintn(uint64(len(p.endpoints)))]
	}
	r := p.src.uintn(p.cumulative[len(p.cumulative)-1])
	lo, hi := 0, len(p.cumulative)-1
	for lo < hi { // first i with cumulative[i] > r
		m := int(uint(lo+hi) >> 1)
		if p.cumulative[m] > r {
			hi = m
		} else {
			lo = m + 1
		}
	}
	return p.endpoints[lo]
}

func (p *randomPicker) Pick(info PickInfo) (PickResult, error) {
	e := p.draw()
	if len(info.Tried) > 0 && tried(e, info.Tried) {
		e = avoidTried(e, p.endpoints, info.Tried, p.draw)
	}
	return PickResult{Endpoint: e}, nil
}

// avoidTried redraws a few times, then takes the first untried endpoint;
// if all were tried it keeps the first draw.
func avoidTried(first *mesh.Endpoint, eps, triedList []*mesh.Endpoint, draw func() *mesh.Endpoint) *mesh.Endpoint {
	for range 2 * len(eps) {
		if e := draw(); !tried(e, triedList) {
			return e
		}
	}
	for _, e := range eps {
		if !tried(e, triedList) {
			return e
		}
	}
	return first
}
