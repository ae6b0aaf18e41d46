package balancer

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/shoalmesh/shoal/sdk/mesh"
)

// RingHashName is the registry name of RingHash.
const RingHashName = "ring_hash"

// WithRingSize bounds the ring-hash ring: at least minSize points (up to
// twice that, see RingHash), at most maxSize. Defaults: 1024 and 8M, as
// Envoy's.
func WithRingSize(minSize, maxSize uint64) Option {
	return optionFunc(func(o *options) { o.minRing, o.maxRing = minSize, maxSize })
}

// WithHashKey names the header or attachment RingHash hashes, for clusters
// whose mesh policy does not say.
func WithHashKey(name string) Option {
	return optionFunc(func(o *options) { o.hashHeader = name })
}

// RingHash returns the consistent-hashing balancer. Each endpoint owns
// points on a ring of 64-bit hashes in proportion to its weight; a call goes
// to the owner of the first point at or after the hash of its key, so the
// same key reaches the same endpoint and adding one endpoint to n moves
// only about 1/(n+1) of the keys, all of them to the new endpoint (the
// lightest endpoint's point count is a power of two, so the others keep
// their points; the ring holds between the minimum size and twice that). The key is a header or attachment, named
// by the cluster's consistent-hash policy or by WithHashKey; calls without
// it are spread at random. The hash is FNV-1a with a 64-bit finalizer,
// stable across processes, so every consumer agrees on the placement.
func RingHash(opts ...Option) Builder { return ringBuilder{o: newOptions(opts)} }

type ringBuilder struct{ o options }

func (ringBuilder) Name() string { return RingHashName }

func (b ringBuilder) Build(opts BuildOptions) Balancer {
	rb := &ringBalancer{target: opts.Target, src: b.o.source(), minRing: b.o.minRing, maxRing: b.o.maxRing, key: b.o.hashHeader}
	if lb := opts.LoadBalancer; lb != nil && lb.ConsistentHash != nil {
		ch := lb.ConsistentHash
		if ch.MinRingSize > 0 {
			rb.minRing = ch.MinRingSize
		}
		switch ch.Source {
		case mesh.HashHeader:
			rb.key = ch.Name
		case mesh.HashSourceIP, mesh.HashCookie, mesh.HashQueryParameter:
			rb.key = "" // not available on an RPC: spread at random
		}
	}
	if rb.minRing == 0 || rb.maxRing < rb.minRing {
		rb.err = fmt.Errorf("balancer %s for %s: ring size min %d, max %d: need 0 < min <= max; use WithRingSize(1024, 8<<20)", RingHashName, opts.Target, rb.minRing, rb.maxRing)
	}
	return rb
}

type ringBalancer struct {
	target           string
	src              source
	minRing, maxRing uint64
	key              string
	err              error
}

type ringEntry struct {
	hash uint64
	idx  int32
}

func (b *ringBalancer) UpdateState(s State) (Picker, error) {
	if b.err != nil {
		return nil, b.err
	}
	if len(s.Endpoints) == 0 {
		return errPicker{err: noEndpoints(b.target, "the endpoint list is empty")}, nil
	}
	return &ringPicker{endpoints: s.Endpoints, ring: buildRing(s.Endpoints, b.minRing, b.maxRing), key: b.key, src: b.src}, nil
}

// buildRing gives each endpoint points in proportion to its weight. The
// lightest endpoint gets p points, p being the smallest power of two that
// brings the ring to at least minRing points; the ring is capped at maxRing
// by scaling down. Rounding p up to a power of two (the ring holds between
// minRing and 2*minRing points) keeps every endpoint's points unchanged when
// an endpoint joins or leaves, unless the count crosses a power of two, so
// only the keys the new endpoint takes over move.
func buildRing(eps []*mesh.Endpoint, minRing, maxRing uint64) []ringEntry {
	var total uint64
	wmin := uint64(math.MaxUint32)
	for _, e := range eps {
		w := uint64(max(e.Weight, 1))
		total += w
		wmin = min(wmin, w)
	}
	// Points of the lightest endpoint: minRing * wmin / total, rounded up
	// to a power of two.
	p := uint64(1)
	for p*total < minRing*wmin {
		p <<= 1
	}
	perWeight := float64(p) / float64(wmin)
	if size := perWeight * float64(total); size > float64(maxRing) {
		perWeight *= float64(maxRing) / size
	}
	ring := make([]ringEntry, 0, int(perWeight*float64(total))+len(eps))
	buf := make([]byte, 0, 64)
	for i, e := range eps {
		count := max(int(math.Round(perWeight*float64(max(e.Weight, 1)))), 1)
		for n := range count {
			buf = append(buf[:0], e.Address...)
			buf = append(buf, '_')
			buf = strconv.AppendInt(buf, int64(n), 10)
			ring = append(ring, ringEntry{hash: hashBytes(buf), idx: int32(i)})
		}
	}
	slices.SortFunc(ring, func(a, b ringEntry) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return int(a.idx - b.idx)
	})
	return ring
}

type ringPicker struct {
	endpoints []*mesh.Endpoint
	ring      []ringEntry
	key       string
	src       source
}

func (p *ringPicker) Pick(info PickInfo) (PickResult, error) {
	var h uint64
	if v, ok := p.lookup(info); ok {
		h = HashKey(v)
	} else {
		h = p.src()
	}
	i := p.search(h)
	e := p.endpoints[p.ring[i].idx]
	if len(info.Tried) > 0 && tried(e, info.Tried) {
		for range len(p.ring) { // walk on to the next untried owner
			i++
			if i == len(p.ring) {
				i = 0
			}
			if c := p.endpoints[p.ring[i].idx]; !tried(c, info.Tried) {
				e = c
				break
			}
		}
	}
	return PickResult{Endpoint: e}, nil
}

func (p *ringPicker) lookup(info PickInfo) (string, bool) {
	if p.key == "" || info.Call == nil {
		return "", false
	}
	return info.Call.Attachments.Get(p.key)
}

// search returns the index of the first entry with hash >= h, wrapping.
func (p *ringPicker) search(h uint64) int {
	lo, hi := 0, len(p.ring)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if p.ring[m].hash < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(p.ring) {
		return 0
	}
	return lo
}

// HashKey is the hash RingHash places keys with: FNV-1a over the bytes,
// then the splitmix64 finalizer for an even spread over the ring.
func HashKey(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix64(h)
}

func hashBytes(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return mix64(h)
}

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
