// Package proc runs interop peers that live in another process: the Java
// Dubbo peer and the dubbo-go peers, which cannot share this module's
// dependencies. They all speak one protocol:
//
//   - a client process reads the cases as JSON lines on standard input and
//     writes one outcome per case as a JSON line on standard output (other
//     lines, such as a library's logging, are ignored);
//   - a server process prints a line starting with "READY " once it serves,
//     and exits when its standard input closes.
package proc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/shoalmesh/shoal/interop/cases"
	"github.com/shoalmesh/shoal/localmesh"
)

// wireCase is a case as a client process reads it.
type wireCase struct {
	Name        string            `json:"name"`
	Method      string            `json:"method"`
	Requests    []wireRequest     `json:"requests"`
	Group       string            `json:"group,omitempty"`
	Version     string            `json:"version,omitempty"`
	Attachments map[string]string `json:"attachments,omitempty"`
	TimeoutMS   int               `json:"timeout_ms,omitempty"`
}

type wireRequest struct {
	Name         string `json:"name"`
	PayloadBytes int    `json:"payload_bytes"`
	Count        int32  `json:"count"`
	SleepMS      int32  `json:"sleep_ms"`
	FailCode     int32  `json:"fail_code"`
	Age          int32  `json:"age,omitempty"`
}

// wireOutcome is an outcome as a client process writes it.
type wireOutcome struct {
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

// EncodeCases writes cs as JSON lines.
func EncodeCases(cs []cases.Case) (string, error) {
	var in strings.Builder
	for _, k := range cs {
		wc := wireCase{Name: k.Name, Method: k.Method, Group: k.Group, Version: k.Version, Attachments: k.Attachments, TimeoutMS: k.TimeoutMS}
		for _, r := range k.Requests {
			wc.Requests = append(wc.Requests, wireRequest{Name: r.Name, PayloadBytes: r.PayloadBytes, Count: r.Count, SleepMS: r.SleepMS, FailCode: r.FailCode, Age: r.Age})
		}
		b, err := json.Marshal(wc)
		if err != nil {
			return "", err
		}
		in.Write(b)
		in.WriteByte('\n')
	}
	return in.String(), nil
}

// DecodeOutcomes reads the outcome lines of a client process's output.
func DecodeOutcomes(out []byte) ([]cases.Outcome, error) {
	var outcomes []cases.Outcome
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var wo wireOutcome
		if err := json.Unmarshal([]byte(line), &wo); err != nil {
			return nil, fmt.Errorf("client output %q: %w", line, err)
		}
		o := cases.Outcome{Code: codes.Code(uint32(wo.Code)), Message: wo.Message, Exception: wo.Exception}
		for _, r := range wo.Responses {
			o.Responses = append(o.Responses, cases.Response{Greeting: r.Greeting, PayloadBytes: r.PayloadBytes, ServedBy: r.ServedBy, Seen: r.Seen})
		}
		outcomes = append(outcomes, o)
	}
	return outcomes, sc.Err()
}

// RunClient runs a client process (a command made with exec.CommandContext,
// so that ctx bounds it) on the cases cs.
func RunClient(cmd *exec.Cmd, cs []cases.Case) ([]cases.Outcome, error) {
	in, err := EncodeCases(cs)
	if err != nil {
		return nil, err
	}
	cmd.Stdin = strings.NewReader(in)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w; stderr ends: %s", cmd.Path, err, Tail(stderr.String()))
	}
	return DecodeOutcomes(out)
}

// StartServer starts a server process and waits, at most wait, for its
// READY line. Its standard error goes to a temporary log file, removed on
// stop; stop closes its standard input and waits for it to exit.
func StartServer(ctx context.Context, cmd *exec.Cmd, wait time.Duration) (stop func(), err error) {
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	logf, err := os.CreateTemp("", "interop-server-*.log")
	if err != nil {
		return nil, err
	}
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		_ = os.Remove(logf.Name())
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the exit status of a server told to stop says nothing
		close(done)
	}()
	stop = func() {
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
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "READY ") {
				ready <- nil
				for sc.Scan() { // keep draining
				}
				return
			}
		}
		ready <- errors.New("the server exited before READY")
	}()
	fail := func(err error) (func(), error) {
		log, _ := os.ReadFile(logf.Name())
		stop()
		return nil, fmt.Errorf("%s: %w; its log ends: %s", cmd.Path, err, Tail(string(log)))
	}
	select {
	case err := <-ready:
		if err != nil {
			return fail(err)
		}
	case <-ctx.Done():
		return fail(ctx.Err())
	case <-time.After(wait):
		return fail(fmt.Errorf("no READY in %v", wait))
	}
	return stop, nil
}

// FreePort reserves a port for a peer process to listen on. A port found
// free and handed over races with every other test process and outgoing
// connection on the machine; localmesh reserves it below the ephemeral
// range instead, for the life of this process.
func FreePort() (int, error) {
	ps, err := localmesh.ReservePorts(1)
	if err != nil {
		return 0, err
	}
	return ps[0], nil
}

// Tail is the end of a long log.
func Tail(s string) string {
	if len(s) > 1500 {
		return s[len(s)-1500:]
	}
	return s
}
