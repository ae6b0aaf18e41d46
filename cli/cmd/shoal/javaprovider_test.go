package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// javaProvider is the script command `javaprovider PORT [group:version]...`:
// it runs the Java Dubbo 3.3.6 provider of samples/java (built by
// samples/java/build.sh, which `make deps` runs) on 127.0.0.1:PORT,
// exporting greet.GreetService and the plain Java interface
// io.shoalmesh.samples.GreetingService plain and under each group:version,
// and returns once it prints READY. The JVM runs until its standard input
// closes, which happens when the script ends; its output goes to
// $WORK/java.log.
func javaProvider(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: javaprovider PORT [group:version]...")
	}
	jar := filepath.Join(ts.Getenv("SHOAL_DIR"), "samples", "java", "target", "shoal-java-samples.jar")
	if _, err := os.Stat(jar); err != nil {
		ts.Fatalf("the Java samples are not built (%v); run samples/java/build.sh or make deps", err)
	}
	cmdArgs := []string{"-Ddubbo.network.interface.ignored=.*", "-jar", jar, "provider-idl", "--port", args[0]}
	for _, gv := range args[1:] {
		cmdArgs = append(cmdArgs, "--export", gv)
	}
	cmdArgs = append(cmdArgs, "--export", ":") // the plain export last: it serves calls with no exact match
	cmd := exec.Command("java", cmdArgs...)
	log, err := os.Create(ts.MkAbs("java.log"))
	ts.Check(err)
	stdin, err := cmd.StdinPipe()
	ts.Check(err)
	stdout, err := cmd.StdoutPipe()
	ts.Check(err)
	cmd.Stderr = log
	ts.Check(cmd.Start())
	exited := make(chan struct{})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		seen := false
		for sc.Scan() {
			_, _ = log.WriteString(sc.Text() + "\n")
			if !seen && strings.HasPrefix(sc.Text(), "READY") {
				seen = true
				ready <- true
			}
		}
		if !seen {
			ready <- false
		}
		_ = cmd.Wait() // the JVM's exit status after the script ends says nothing
		close(exited)
	}()
	ts.Defer(func() {
		_ = stdin.Close()
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = log.Close()
	})
	select {
	case ok := <-ready:
		if !ok {
			ts.Fatalf("the Java provider exited before it was ready; see java.log")
		}
	case <-time.After(3 * time.Minute):
		ts.Fatalf("the Java provider printed no READY within 3 minutes; see java.log")
	}
}
