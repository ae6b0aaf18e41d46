package main

import (
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"shoal": func() { main() },
	})
}

// TestScripts runs the command-line scripts in testdata/script against the
// real shoal binary (this test binary, re-executed as shoal).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{Dir: "testdata/script"})
}
