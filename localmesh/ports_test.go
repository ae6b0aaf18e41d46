package localmesh

import (
	"net"
	"os/exec"
	"strconv"
	"testing"
)

func TestReservedPortsAreBelowTheEphemeralRange(t *testing.T) {
	lo, hi := reservedRange()
	if lo < 1024 || hi < lo {
		t.Fatalf("reservedRange() = %d-%d", lo, hi)
	}
	// An outgoing connection's local port comes from the ephemeral range;
	// it must never fall into the reserved one.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if p := l.Addr().(*net.TCPAddr).Port; p >= lo && p <= hi {
		t.Fatalf("the kernel handed out port %d, inside the reserved range %d-%d", p, lo, hi)
	}
}

func TestReservationsNeverOverlap(t *testing.T) {
	dir := t.TempDir()
	a := &portReserver{dir: dir}
	b := &portReserver{dir: dir} // stands in for another test process sharing the directory
	defer closeAll(a)
	defer closeAll(b)
	seen := map[int]string{}
	for round := range 20 {
		for name, r := range map[string]*portReserver{"a": a, "b": b} {
			ps, err := r.reserve(3)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range ps {
				if other, dup := seen[p]; dup {
					t.Fatalf("round %d: port %d reserved by %s and %s", round, p, other, name)
				}
				seen[p] = name
			}
		}
	}
}

func TestReservationSkipsPortsInUse(t *testing.T) {
	lo, hi := reservedRange()
	// A port some other program listens on is never handed out, over many
	// picks.
	r := &portReserver{dir: t.TempDir()}
	defer closeAll(r)
	ps, err := r.reserve(1)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", ":"+strconv.Itoa(ps[0]))
	if err != nil {
		t.Fatalf("a reserved port is not bindable: %v", err)
	}
	defer l.Close()
	closeAll(r) // drop the reservation: only the listener guards the port now
	for range 200 {
		got, err := r.reserve(1)
		if err != nil {
			t.Fatal(err)
		}
		if got[0] == ps[0] {
			t.Fatalf("port %d is listened on but was reserved", ps[0])
		}
		if got[0] < lo || got[0] > hi {
			t.Fatalf("port %d outside %d-%d", got[0], lo, hi)
		}
	}
}

func TestReservationHoldsOffOtherProcesses(t *testing.T) {
	flock, err := exec.LookPath("flock")
	if err != nil {
		t.Skipf("flock(1) not installed: %v", err)
	}
	r := &portReserver{dir: t.TempDir()}
	ps, err := r.reserve(1)
	if err != nil {
		t.Fatal(err)
	}
	path := r.held[0].Name()
	// While held, another process cannot take it.
	if exec.Command(flock, "-n", path, "true").Run() == nil {
		t.Fatalf("port %d: another process took a held reservation", ps[0])
	}
	closeAll(r) // the kernel does the same for a holder that exits
	if err := exec.Command(flock, "-n", path, "true").Run(); err != nil {
		t.Fatalf("port %d: reservation not released: %v", ps[0], err)
	}
}

func closeAll(r *portReserver) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.held {
		_ = f.Close()
	}
	r.held = nil
}
