package plugin

import (
	"strings"
	"testing"
)

type named string

func (n named) Name() string { return string(n) }

func TestSet(t *testing.T) {
	var s Set[named]
	s.Kind = "widget"
	if err := s.Register(named("")); err == nil {
		t.Error("empty name accepted")
	}
	for _, n := range []named{"b", "a", "b"} {
		if err := s.Register(n); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(s.Names(), ","); got != "a,b" {
		t.Errorf("Names = %s, want a,b", got)
	}
	if p, err := s.Get("a"); err != nil || p != "a" {
		t.Errorf("Get(a) = %v, %v", p, err)
	}
	_, err := s.Get("c")
	if err == nil || !strings.Contains(err.Error(), `widget "c" is not registered; registered: a, b`) {
		t.Errorf("Get(c) error = %v", err)
	}
}
