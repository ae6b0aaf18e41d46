package balancer_test

import (
	"strconv"
	"testing"

	"github.com/shoalmesh/shoal/sdk/balancer"
	"github.com/shoalmesh/shoal/sdk/call"
)

func benchPick(b *testing.B, bb balancer.Builder, weights ...uint32) {
	h := handle(b, bb, endpoints(weights...))
	info := balancer.PickInfo{Call: &call.Info{Attachments: call.Attachments{"x-user": "alice"}}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, err := h.Pick(info)
		if err != nil {
			b.Fatal(err)
		}
		if r.Done != nil {
			r.Done(balancer.DoneInfo{})
		}
	}
}

func ten(w uint32) []uint32 {
	ws := make([]uint32, 10)
	for i := range ws {
		ws[i] = w + uint32(i)*(w-1)
	}
	return ws
}

func BenchmarkPick(b *testing.B) {
	b.Run("round_robin/10", func(b *testing.B) { benchPick(b, balancer.RoundRobin(), ten(1)...) })
	b.Run("round_robin_weighted/10", func(b *testing.B) { benchPick(b, balancer.RoundRobin(), ten(3)...) })
	b.Run("random/10", func(b *testing.B) { benchPick(b, balancer.Random(), ten(1)...) })
	b.Run("random_weighted/10", func(b *testing.B) { benchPick(b, balancer.Random(), ten(3)...) })
	b.Run("least_request/10", func(b *testing.B) { benchPick(b, balancer.LeastRequest(), ten(1)...) })
	b.Run("ring_hash/10", func(b *testing.B) { benchPick(b, balancer.RingHash(balancer.WithHashKey("x-user")), ten(1)...) })
}

func BenchmarkPickParallel(b *testing.B) {
	h := handle(b, balancer.RoundRobin(), endpoints(ten(1)...))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.Pick(balancer.PickInfo{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkUpdate(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run("ring_hash/"+strconv.Itoa(n), func(b *testing.B) {
			ws := make([]uint32, n)
			for i := range ws {
				ws[i] = 1
			}
			eps := endpoints(ws...)
			h := balancer.NewHandle(balancer.RingHash(), balancer.BuildOptions{})
			b.ReportAllocs()
			for b.Loop() {
				if err := h.Update(balancer.State{Endpoints: eps}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
