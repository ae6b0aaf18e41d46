package balancer

import (
	"container/heap"
	"sync/atomic"

	"github.com/shoalmesh/shoal/sdk/mesh"
)

// RoundRobinName is the registry name of RoundRobin.
const RoundRobinName = "round_robin"

// maxSchedule bounds a weighted round-robin schedule; weights are scaled
// down to fit, keeping every endpoint at least once.
const maxSchedule = 1 << 14

// RoundRobin returns the round-robin balancer. With equal weights it cycles
// through the endpoints; with unequal weights it follows a smooth schedule
// (earliest deadline first) in which each endpoint appears in proportion to
// its weight and picks of one endpoint are spread out, as Envoy's weighted
// round robin does. Each new picker starts at a random position so that
// many consumers do not hit the same endpoint first.
func RoundRobin(opts ...Option) Builder { return rrBuilder{o: newOptions(opts)} }

type rrBuilder struct{ o options }

func (rrBuilder) Name() string { return RoundRobinName }

func (b rrBuilder) Build(opts BuildOptions) Balancer {
	return &rrBalancer{target: opts.Target, src: b.o.source()}
}

type rrBalancer struct {
	target string
	src    source
}

func (b *rrBalancer) UpdateState(s State) (Picker, error) {
	n := len(s.Endpoints)
	if n == 0 {
		return errPicker{err: noEndpoints(b.target, "the endpoint list is empty")}, nil
	}
	p := &rrPicker{endpoints: s.Endpoints}
	if !equalWeights(s.Endpoints) {
		p.schedule = wrrSchedule(s.Endpoints)
	}
	size := uint64(n)
	if p.schedule != nil {
		size = uint64(len(p.schedule))
	}
	p.size = size
	p.next.Store(b.src.uintn(size))
	return p, nil
}

type rrPicker struct {
	next      atomic.Uint64
	size      uint64
	endpoints []*mesh.Endpoint
	schedule  []int32 // nil when weights are equal
}

func (p *rrPicker) at(i uint64) *mesh.Endpoint {
	i %= p.size
	if p.schedule != nil {
		return p.endpoints[p.schedule[i]]
	}
	return p.endpoints[i]
}

func (p *rrPicker) Pick(info PickInfo) (PickResult, error) {
	e := p.at(p.next.Add(1))
	if len(info.Tried) > 0 && tried(e, info.Tried) {
		for range p.size {
			if c := p.at(p.next.Add(1)); !tried(c, info.Tried) {
				e = c
				break
			}
		}
	}
	return PickResult{Endpoint: e}, nil
}

func equalWeights(eps []*mesh.Endpoint) bool {
	for _, e := range eps[1:] {
		if e.Weight != eps[0].Weight {
			return false
		}
	}
	return true
}

// wrrSchedule lays out one period of weighted round robin by earliest
// deadline first: endpoint i is due at (k+1/2)/w_i for k = 0, 1, ...; ties
// go to the lower index. The half-step start keeps the schedule smooth across
// the wrap from one period to the next.
func wrrSchedule(eps []*mesh.Endpoint) []int32 {
	weights := make([]uint64, len(eps))
	var total uint64
	for i, e := range eps {
		weights[i] = uint64(max(e.Weight, 1))
		total += weights[i]
	}
	if g := gcdAll(weights); g > 1 {
		total = 0
		for i := range weights {
			weights[i] /= g
			total += weights[i]
		}
	}
	if total > maxSchedule {
		scaled := uint64(0)
		for i := range weights {
			weights[i] = max(weights[i]*maxSchedule/total, 1)
			scaled += weights[i]
		}
		total = scaled
	}
	h := make(edfHeap, len(weights))
	for i, w := range weights {
		h[i] = edfEntry{deadline: 0.5 / float64(w), step: 1 / float64(w), idx: int32(i)}
	}
	heap.Init(&h)
	out := make([]int32, 0, total)
	for range total {
		e := &h[0]
		out = append(out, e.idx)
		e.deadline += e.step
		heap.Fix(&h, 0)
	}
	return out
}

func gcdAll(ws []uint64) uint64 {
	g := ws[0]
	for _, w := range ws[1:] {
		for w != 0 {
			g, w = w, g%w
		}
	}
	return g
}

type edfEntry struct {
	deadline, step float64
	idx            int32
}

type edfHeap []edfEntry

func (h edfHeap) Len() int { return len(h) }
func (h edfHeap) Less(i, j int) bool {
	if h[i].deadline != h[j].deadline {
		return h[i].deadline < h[j].deadline
	}
	return h[i].idx < h[j].idx
}
func (h edfHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *edfHeap) Push(x any)   { *h = append(*h, x.(edfEntry)) }
func (h *edfHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
