// Package cases loads Shoal's interop cases (cases.yaml) and the list of known
// failures, and checks an outcome against a case's expectations. The cases are
// data so that a peer written in any language can run them.
package cases

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"gopkg.in/yaml.v3"
)

// Methods of greet.GreetService.
const (
	MethodUnary        = "Greet"
	MethodServerStream = "GreetServerStream"
	MethodClientStream = "GreetClientStream"
	MethodBidiStream   = "GreetBidiStream"
)

// Methods of io.shoalmesh.samples.GreetingService, a plain Java interface
// called in Triple's wrapper mode (hessian2): greet(String) returns
// "Hello, NAME"; describe(Person) returns a Person whose greeting is
// "Hello, NAME, AGE" and whose seen map is what the server saw; fail(String)
// throws GreetingException with the name as its message.
const (
	MethodWrapperGreet    = "greet"
	MethodWrapperDescribe = "describe"
	MethodWrapperFail     = "fail"
)

// Java classes of GreetingService.
const (
	WrapperService   = "io.shoalmesh.samples.GreetingService"
	WrapperPerson    = "io.shoalmesh.samples.Person"
	WrapperException = "io.shoalmesh.samples.GreetingException"
)

// Server features a case may need (see Case.Needs).
const (
	// NeedSeen: the server reports what it saw (group, version, attachments)
	// in GreetResponse.seen.
	NeedSeen = "seen"
	// NeedGroupVersion: the server routes on tri-service-group/-version.
	NeedGroupVersion = "group-version"
	// NeedWrapper: the peer serves or calls GreetingService in wrapper mode
	// (a client peer without it skips the case too).
	NeedWrapper = "wrapper"
)

// Request is one GreetRequest to send.
type Request struct {
	Name         string `yaml:"name"`
	PayloadBytes int    `yaml:"payload_bytes"`
	Count        int32  `yaml:"count"`
	SleepMS      int32  `yaml:"sleep_ms"`
	FailCode     int32  `yaml:"fail_code"`
	Age          int32  `yaml:"age"` // describe's Person.age
}

// Want is what a case expects.
type Want struct {
	Code             string            `yaml:"code"`
	Responses        int               `yaml:"responses"`
	GreetingContains []string          `yaml:"greeting_contains"`
	PayloadBytes     int               `yaml:"payload_bytes"`
	Seen             map[string]string `yaml:"seen"`
	// NotSeen lists keys the server must not report having seen (an
	// ungrouped call reaching a grouped export reports its group).
	NotSeen []string `yaml:"not_seen"`
	// Exception is the Java class of the business exception the call
	// throws (wrapper mode); the call itself succeeds (status OK).
	Exception       string   `yaml:"exception"`
	MessageContains []string `yaml:"message_contains"`
}

// Case is one call a client peer makes against a server peer.
type Case struct {
	Name        string            `yaml:"name"`
	Method      string            `yaml:"method"`
	Requests    []Request         `yaml:"requests"`
	Group       string            `yaml:"group"`
	Version     string            `yaml:"version"`
	Attachments map[string]string `yaml:"attachments"`
	TimeoutMS   int               `yaml:"timeout_ms"`
	Needs       []string          `yaml:"needs"`
	Want        Want              `yaml:"want"`
}

// Response is what a client received in one GreetResponse.
type Response struct {
	Greeting     string
	PayloadBytes int
	ServedBy     string
	Seen         map[string]string
}

// Outcome is the result of running a case: the responses received and the
// final status.
type Outcome struct {
	Code      codes.Code
	Message   string
	Responses []Response
	// Exception is the Java class of a thrown business exception (wrapper
	// mode), with Message its message.
	Exception string
}

//go:embed cases.yaml
var embedded []byte

// Default returns the cases in cases.yaml, validated.
func Default() ([]Case, error) { return Parse(embedded) }

// Parse reads and validates cases from YAML.
func Parse(data []byte) ([]Case, error) {
	var doc struct {
		Cases []Case `yaml:"cases"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("cases: %w", err)
	}
	var errs []error
	seen := map[string]bool{}
	for i, c := range doc.Cases {
		where := fmt.Sprintf("cases[%d] (%s)", i, c.Name)
		switch {
		case c.Name == "":
			errs = append(errs, fmt.Errorf("cases[%d]: name is empty", i))
		case seen[c.Name]:
			errs = append(errs, fmt.Errorf("%s: duplicate name", where))
		}
		seen[c.Name] = true
		switch c.Method {
		case MethodWrapperGreet, MethodWrapperDescribe, MethodWrapperFail:
			if len(c.Requests) != 1 {
				errs = append(errs, fmt.Errorf("%s: %s takes exactly one request, got %d", where, c.Method, len(c.Requests)))
			}
			if !slices.Contains(c.Needs, NeedWrapper) {
				errs = append(errs, fmt.Errorf("%s: %s is a wrapper-mode method; add %q to needs", where, c.Method, NeedWrapper))
			}
		case MethodUnary, MethodServerStream:
			if len(c.Requests) != 1 {
				errs = append(errs, fmt.Errorf("%s: %s takes exactly one request, got %d", where, c.Method, len(c.Requests)))
			}
		case MethodClientStream, MethodBidiStream:
			if len(c.Requests) == 0 {
				errs = append(errs, fmt.Errorf("%s: %s needs at least one request", where, c.Method))
			}
		default:
			errs = append(errs, fmt.Errorf("%s: unknown method %q; use Greet, GreetServerStream, GreetClientStream, GreetBidiStream, greet, describe or fail", where, c.Method))
		}
		if _, err := ParseCode(c.Want.Code); err != nil {
			errs = append(errs, fmt.Errorf("%s: want.code: %w", where, err))
		}
		for _, n := range c.Needs {
			if n != NeedSeen && n != NeedGroupVersion && n != NeedWrapper {
				errs = append(errs, fmt.Errorf("%s: unknown need %q; use %q, %q or %q", where, n, NeedSeen, NeedGroupVersion, NeedWrapper))
			}
		}
	}
	if len(doc.Cases) == 0 {
		errs = append(errs, errors.New("cases: the file defines no case"))
	}
	return doc.Cases, errors.Join(errs...)
}

// ParseCode turns a status code name (OK, NotFound, ...) into a code. The
// empty name is OK.
func ParseCode(name string) (codes.Code, error) {
	if name == "" {
		return codes.OK, nil
	}
	for c := codes.OK; c <= codes.Unauthenticated; c++ {
		if c.String() == name {
			return c, nil
		}
	}
	return 0, fmt.Errorf("unknown status code name %q (use the grpc-go names such as NotFound)", name)
}

// Check reports every way in which o falls short of c's expectations.
func Check(c Case, o Outcome) error {
	want, _ := ParseCode(c.Want.Code)
	if o.Code != want {
		return fmt.Errorf("status %v (%q), want %v", o.Code, o.Message, want)
	}
	if want != codes.OK {
		return nil
	}
	var errs []error
	if o.Exception != c.Want.Exception {
		errs = append(errs, fmt.Errorf("exception %q (%q), want %q", o.Exception, o.Message, c.Want.Exception))
	}
	for _, s := range c.Want.MessageContains {
		if !strings.Contains(o.Message, s) {
			errs = append(errs, fmt.Errorf("message %q does not contain %q", o.Message, s))
		}
	}
	if len(o.Responses) != c.Want.Responses {
		errs = append(errs, fmt.Errorf("%d responses, want %d", len(o.Responses), c.Want.Responses))
	}
	for i, r := range o.Responses {
		for _, s := range c.Want.GreetingContains {
			if !strings.Contains(r.Greeting, s) {
				errs = append(errs, fmt.Errorf("response %d: greeting %q does not contain %q", i, r.Greeting, s))
			}
		}
		if c.Want.PayloadBytes != 0 && r.PayloadBytes != c.Want.PayloadBytes {
			errs = append(errs, fmt.Errorf("response %d: payload of %d bytes, want %d", i, r.PayloadBytes, c.Want.PayloadBytes))
		}
		keys := make([]string, 0, len(c.Want.Seen))
		for k := range c.Want.Seen {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if got, ok := r.Seen[k]; !ok || got != c.Want.Seen[k] {
				errs = append(errs, fmt.Errorf("response %d: server saw %s=%q (present %v), want %q", i, k, got, ok, c.Want.Seen[k]))
			}
		}
		for _, k := range c.Want.NotSeen {
			if got, ok := r.Seen[k]; ok {
				errs = append(errs, fmt.Errorf("response %d: server saw %s=%q, want it absent", i, k, got))
			}
		}
	}
	return errors.Join(errs...)
}

// KnownFailures is the set of client/server/case triples expected to fail.
type KnownFailures map[string]string

// Key names one run of a case.
func Key(client, server, name string) string { return client + " " + server + " " + name }

// LoadKnownFailures reads a known-failures file: one `client server case`
// triple per line, `#` starts a comment (the reason).
func LoadKnownFailures(path string) (KnownFailures, error) {
	f, err := os.Open(path) //nolint:gosec // a path inside the repository
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseKnownFailures(f)
}

// ParseKnownFailures reads the known-failures format from r.
func ParseKnownFailures(r io.Reader) (KnownFailures, error) {
	kf := KnownFailures{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, why, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 3 {
			return nil, fmt.Errorf("known failures line %d: want `client server case  # reason`, got %q", n, sc.Text())
		}
		kf[Key(fields[0], fields[1], fields[2])] = strings.TrimSpace(why)
	}
	return kf, sc.Err()
}
