// Package java is the Java Dubbo 3.3 peer of the interop suite: the IDL
// provider and the case-driven IDL consumer of samples/java, run as JVM
// processes on loopback. Both also serve and call GreetingService, a plain
// Java interface, in wrapper mode (hessian2).
package java

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/shoalmesh/shoal/interop/cases"
	"github.com/shoalmesh/shoal/interop/peer"
)

// Jar is the samples' fat jar, built by samples/java/build.sh.
func Jar(repoRoot string) (string, error) {
	jar := filepath.Join(repoRoot, "samples", "java", "target", "shoal-java-samples.jar")
	if _, err := os.Stat(jar); err != nil {
		return "", fmt.Errorf("the Java samples are not built (%w); run samples/java/build.sh or make deps", err)
	}
	return jar, nil
}

// Server runs the Java IDL provider.
type Server struct{ Jar string }

// Name implements peer.Server.
func (Server) Name() string { return "java" }

// Supports implements peer.Server.
func (Server) Supports(string) bool { return true }

// Start implements peer.Server: the provider exports greet.GreetService plain
// and under peer.Group/peer.Version, and prints READY.
func (s Server) Start(ctx context.Context) (string, func(), error) {
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command("java", "-Ddubbo.network.interface.ignored=.*", "-jar", s.Jar, "provider-idl", "--port", strconv.Itoa(port),
		"--export", ":", "--export", peer.Group+":"+peer.Version)
	stdin, err := cmd.StdinPipe() // the provider exits when stdin closes
	if err != nil {
		return "", nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	logf, err := os.CreateTemp("", "java-provider-*.log")
	if err != nil {
		return "", nil, err
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return "", nil, err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the exit status of a provider told to stop says nothing
		close(done)
	}()
	stop := func() {
		_ = stdin.Close()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = logf.Close()
		_ = os.Remove(logf.Name())
	}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "READY ") {
				ready <- nil
				for sc.Scan() { // keep draining
				}
				return
			}
		}
		ready <- errors.New("the Java provider exited before READY")
	}()
	select {
	case err := <-ready:
		if err != nil {
			stop()
			return "", nil, fmt.Errorf("%w; see its log", err)
		}
	case <-ctx.Done():
		stop()
		return "", nil, ctx.Err()
	case <-time.After(90 * time.Second):
		stop()
		return "", nil, errors.New("the Java provider did not print READY in 90s")
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), stop, nil
}

// Client runs the Java IDL consumer.
type Client struct{ Jar string }

// Name implements peer.Client.
func (Client) Name() string { return "java" }

type javaCase struct {
	Name        string            `json:"name"`
	Method      string            `json:"method"`
	Requests    []javaReq         `json:"requests"`
	Group       string            `json:"group,omitempty"`
	Version     string            `json:"version,omitempty"`
	Attachments map[string]string `json:"attachments,omitempty"`
	TimeoutMS   int               `json:"timeout_ms,omitempty"`
}

type javaReq struct {
	Name         string `json:"name"`
	PayloadBytes int    `json:"payload_bytes"`
	Count        int32  `json:"count"`
	SleepMS      int32  `json:"sleep_ms"`
	FailCode     int32  `json:"fail_code"`
	Age          int32  `json:"age,omitempty"`
}

type javaOutcome struct {
	Code      int    `json:"code"`
	Message   string `json:"message"`
	Exception string `json:"exception"`
	Responses []struct {
		Greeting     string            `json:"greeting"`
		PayloadBytes int               `json:"payload_bytes"`
		ServedBy     string            `json:"served_by"`
		Seen         map[string]string `json:"seen"`
	} `json:"responses"`
}

// Run implements peer.Client: one JVM runs every case, read as JSON lines.
func (c Client) Run(ctx context.Context, addr string, cs []cases.Case) ([]cases.Outcome, error) {
	var in strings.Builder
	for _, k := range cs {
		jc := javaCase{Name: k.Name, Method: k.Method, Group: k.Group, Version: k.Version, Attachments: k.Attachments, TimeoutMS: k.TimeoutMS}
		for _, r := range k.Requests {
			jc.Requests = append(jc.Requests, javaReq{Name: r.Name, PayloadBytes: r.PayloadBytes, Count: r.Count, SleepMS: r.SleepMS, FailCode: r.FailCode, Age: r.Age})
		}
		b, err := json.Marshal(jc)
		if err != nil {
			return nil, err
		}
		in.Write(b)
		in.WriteByte('\n')
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	// Dubbo replaces every 127.x target with the host's first network address
	// (NetUtils.filterLocalHost); ignoring every interface makes that 127.0.0.1
	// again, so the consumer stays on loopback like the rest of the suite.
	cmd := exec.CommandContext(ctx, "java", "-Ddubbo.network.interface.ignored=.*", "-jar", c.Jar, "consumer-idl", "--target", "tri://"+addr)
	cmd.Stdin = strings.NewReader(in.String())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("java consumer: %w; stderr ends: %s", err, tail(stderr.String()))
	}
	var outcomes []cases.Outcome
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var jo javaOutcome
		if err := json.Unmarshal([]byte(line), &jo); err != nil {
			return nil, fmt.Errorf("java consumer output %q: %w", line, err)
		}
		o := cases.Outcome{Code: codes.Code(uint32(jo.Code)), Message: jo.Message, Exception: jo.Exception}
		for _, r := range jo.Responses {
			o.Responses = append(o.Responses, cases.Response{Greeting: r.Greeting, PayloadBytes: r.PayloadBytes, ServedBy: r.ServedBy, Seen: r.Seen})
		}
		outcomes = append(outcomes, o)
	}
	return outcomes, nil
}

func tail(s string) string {
	if len(s) > 1500 {
		return s[len(s)-1500:]
	}
	return s
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
