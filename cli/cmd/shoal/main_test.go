package main

import (
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"shoal": func() { main() },
	})
}

// TestScripts runs the command-line scripts in testdata/script against the
// real shoal binary (this test binary, re-executed as shoal). Each script
// gets in-process Triple servers (see testserver_test.go) in its
// environment: $TRIPLE (reflection on), $NOREFLECT (reflection off) and
// $CLOSED (a port nothing listens on).
func TestScripts(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	testscript.Run(t, testscript.Params{
		Dir:   "testdata/script",
		Setup: setupServers,
	})
}
