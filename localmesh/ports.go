package localmesh

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Ports for the control plane are reserved, not just found free.
//
// Asking the kernel for a free port (listen on :0, close, hand the number to
// a child process) races with everything else on the machine: between the
// close and the child's bind, another test process may be handed the same
// port, and any outgoing connection may take it as its local port, since
// :0 listeners and outgoing connections share the ephemeral range. Then
// istiod or etcd fails with "address already in use".
//
// So ports come from below the ephemeral range, where the kernel never
// hands out ports on its own, and each is reserved with an exclusive flock
// on a file named after it, held for the life of the process: concurrent
// test processes (go test runs packages in parallel) never pick the same
// port, and the kernel drops the locks of a process that dies.
var reservations = portReserver{dir: filepath.Join(os.TempDir(), "shoal-localmesh-ports")}

type portReserver struct {
	dir  string
	mu   sync.Mutex
	held []*os.File // reservations, kept open until the process exits
}

// ReservePorts reserves n TCP ports, free on every local address, for
// programs that this process starts and that bind them later (a control
// plane, a peer under test). The reservations last as long as the process.
func ReservePorts(n int) ([]int, error) { return reservations.reserve(n) }

func freePorts(n int) ([]int, error) { return reservations.reserve(n) }

func (r *portReserver) reserve(n int) ([]int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := os.MkdirAll(r.dir, 0o777); err != nil { //nolint:gosec // shared by every user's test processes
		return nil, fmt.Errorf("localmesh: port reservations: %w", err)
	}
	lo, hi := reservedRange()
	span := hi - lo + 1
	start := rand.IntN(span) // spreads concurrent searches apart
	out := make([]int, 0, n)
	for i := 0; i < span && len(out) < n; i++ {
		p := lo + (start+i)%span
		f, ok := r.tryLock(p)
		if !ok {
			continue
		}
		if !bindable(p) {
			_ = f.Close()
			continue
		}
		r.held = append(r.held, f)
		out = append(out, p)
	}
	if len(out) < n {
		return nil, fmt.Errorf("localmesh: found %d free ports of %d in %d-%d", len(out), n, lo, hi)
	}
	return out, nil
}

// tryLock takes the reservation of port p, or reports that another process
// (or this one) holds it.
func (r *portReserver) tryLock(p int) (*os.File, bool) {
	f, err := os.OpenFile(filepath.Join(r.dir, strconv.Itoa(p)), os.O_CREATE|os.O_RDWR, 0o666) //nolint:gosec // shared lock files
	if err != nil {
		return nil, false
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, false
	}
	// flock locks an open file description: a second open of the same file
	// in this process conflicts too, so a port held here is skipped as well.
	return f, true
}

// bindable tells whether nothing listens on port p, on any address.
func bindable(p int) bool {
	l, err := net.Listen("tcp", ":"+strconv.Itoa(p))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// reservedRange is the span of ports below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range; 32768-60999 by default): the upper half of
// what lies below it.
func reservedRange() (lo, hi int) {
	eph := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				eph = v
			}
		}
	}
	if eph < 4096 {
		eph = 32768 // an unusual setting: fall back to the default's split
	}
	return eph / 2, eph - 1
}
