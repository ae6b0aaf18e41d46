package command

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/shoalmesh/shoal/sdk/mesh"
	"github.com/shoalmesh/shoal/triple"
)

// callCount is what `shoal call -n N` prints instead of the responses: how
// many of the N calls ended with each status, and which endpoint (and
// version, the endpoint's "version" label) answered how many of them.
type callCount struct {
	Calls     int             `json:"calls"`
	Codes     []codeCount     `json:"codes"`
	Endpoints []endpointCount `json:"endpoints"`
	// Versions sums Endpoints by version; empty when no endpoint has one
	// (a host:port target).
	Versions []versionCount `json:"versions,omitempty"`
}

type codeCount struct {
	Code   string `json:"code"`
	Number int    `json:"number"`
	Calls  int    `json:"calls"`
}

type endpointCount struct {
	// Address is the endpoint the call went to (its last attempt, with
	// retries); "" for calls that reached none.
	Address string `json:"address"`
	Version string `json:"version,omitempty"`
	Calls   int    `json:"calls"`
	OK      int    `json:"ok"`
	// Percent is Calls as a share of all calls.
	Percent float64 `json:"percent"`
}

type versionCount struct {
	Version string  `json:"version"`
	Calls   int     `json:"calls"`
	OK      int     `json:"ok"`
	Percent float64 `json:"percent"`
}

// add counts one call that went to address (version) and ended with err.
func (s *callCount) add(address, version string, err error) {
	s.Calls++
	code := triple.CodeOf(err)
	i := slices.IndexFunc(s.Codes, func(c codeCount) bool { return c.Number == int(code) })
	if i < 0 {
		s.Codes = append(s.Codes, codeCount{Code: strings.ToUpper(code.String()), Number: int(code)})
		i = len(s.Codes) - 1
	}
	s.Codes[i].Calls++
	j := slices.IndexFunc(s.Endpoints, func(e endpointCount) bool { return e.Address == address && e.Version == version })
	if j < 0 {
		s.Endpoints = append(s.Endpoints, endpointCount{Address: address, Version: version})
		j = len(s.Endpoints) - 1
	}
	s.Endpoints[j].Calls++
	if err == nil {
		s.Endpoints[j].OK++
	}
}

// finish sorts the counts (codes by number, endpoints and versions by
// calls, most first) and works out the shares and the versions.
func (s *callCount) finish() {
	percent := func(n int) float64 {
		if s.Calls == 0 {
			return 0
		}
		return float64(n) * 100 / float64(s.Calls)
	}
	slices.SortFunc(s.Codes, func(a, b codeCount) int { return cmp.Compare(a.Number, b.Number) })
	s.Versions = nil
	for i := range s.Endpoints {
		e := &s.Endpoints[i]
		e.Percent = percent(e.Calls)
		if e.Version == "" {
			continue
		}
		j := slices.IndexFunc(s.Versions, func(v versionCount) bool { return v.Version == e.Version })
		if j < 0 {
			s.Versions = append(s.Versions, versionCount{Version: e.Version})
			j = len(s.Versions) - 1
		}
		s.Versions[j].Calls += e.Calls
		s.Versions[j].OK += e.OK
	}
	for i := range s.Versions {
		s.Versions[i].Percent = percent(s.Versions[i].Calls)
	}
	slices.SortFunc(s.Endpoints, func(a, b endpointCount) int {
		return cmp.Or(cmp.Compare(b.Calls, a.Calls), cmp.Compare(a.Address, b.Address), cmp.Compare(a.Version, b.Version))
	})
	slices.SortFunc(s.Versions, func(a, b versionCount) int {
		return cmp.Or(cmp.Compare(b.Calls, a.Calls), cmp.Compare(a.Version, b.Version))
	})
}

// writeText prints the counts as a status line and tables:
//
//	200 calls: 200 OK
//	ENDPOINT         VERSION  CALLS  OK   SHARE
//	10.88.0.5:50051  v1       181    181  90.5%
//	...
//	VERSION  CALLS  OK   SHARE
//	v1       181    181  90.5%
func (s *callCount) writeText(w io.Writer) error {
	codes := make([]string, 0, len(s.Codes))
	for _, c := range s.Codes {
		codes = append(codes, fmt.Sprintf("%d %s", c.Calls, c.Code))
	}
	if _, err := fmt.Fprintf(w, "%d calls: %s\n", s.Calls, strings.Join(codes, ", ")); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tVERSION\tCALLS\tOK\tSHARE")
	for _, e := range s.Endpoints {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.1f%%\n", cmp.Or(e.Address, "(none)"), cmp.Or(e.Version, "-"), e.Calls, e.OK, e.Percent)
	}
	if err := tw.Flush(); err != nil || len(s.Versions) == 0 {
		return err
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nVERSION\tCALLS\tOK\tSHARE")
	for _, v := range s.Versions {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f%%\n", v.Version, v.Calls, v.OK, v.Percent)
	}
	return tw.Flush()
}

// repeat makes c.f.count calls of a unary method with the same request,
// each one on its own (for a mesh target a fresh routing decision: route,
// weighted destination and endpoint are picked per call), and prints their
// counts instead of the responses. It returns the first call's error that
// failed, so the exit code is that call's status code; it stops early when
// ctx ends (--timeout bounds all the calls together).
func (c *caller) repeat(ctx context.Context, cc triple.Invoker, target string, req proto.Message, opts []triple.CallOption) error {
	var s callCount
	var first error
	for range c.f.count {
		if ctx.Err() != nil {
			break
		}
		address, version := target, ""
		if c.endpoint != nil {
			c.endpoint.set(nil)
		}
		err := cc.Invoke(ctx, c.path, req, dynamicpb.NewMessage(c.md.Output()), opts...)
		if c.endpoint != nil {
			address, version = "", ""
			if ep := c.endpoint.get(); ep != nil {
				address, version = ep.Address, endpointVersion(ep)
			}
		}
		s.add(address, version, err)
		if err != nil && first == nil {
			first = err
		}
	}
	s.finish()
	if err := printData(c.e.stdout, c.f.output, &s, s.writeText); err != nil {
		return err
	}
	if s.Calls < c.f.count {
		fmt.Fprintf(c.e.stderr, "made %d of %d calls before --timeout %s ran out; raise it (0 for none)\n", s.Calls, c.f.count, c.f.timeout)
		if first == nil {
			first = triple.Errorf(triple.CodeOf(ctx.Err()), "%v", ctx.Err())
		}
	}
	return first
}

// endpointVersion is an endpoint's version: its "version" label, else the
// canonical revision in Istio's workload metadata
// ("name;namespace;canonical name;canonical revision;cluster", which istiod
// fills from the Pod's version label), else "".
func endpointVersion(ep *mesh.Endpoint) string {
	if v := ep.Labels["version"]; v != "" {
		return v
	}
	if f := strings.Split(ep.Labels["istio.workload"], ";"); len(f) >= 4 {
		return f[3]
	}
	return ""
}
