package authz

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/shoalmesh/shoal/registry-istio/xdsresource"
)

// Request is what a call's authorization is decided on.
type Request struct {
	// Path is the call's path, /<service>/<method>.
	Path string
	// Authority is the :authority (or Host) the client sent.
	Authority string
	// Headers are the call's metadata, keys in lower case.
	Headers map[string][]string
	// Source is the client's address, Destination the server's.
	Source, Destination netip.AddrPort
	// TLS is the connection's state, nil for plaintext; its verified peer
	// certificate is the client's identity.
	TLS *tls.ConnectionState
}

// Decision is the outcome of Evaluate.
type Decision struct {
	Allowed bool
	// Filter is the RBAC filter that refused the call, Policy the DENY
	// policy that matched (empty when an ALLOW filter had no match).
	Filter, Policy string
	// Reason says why a call was refused, naming the policy.
	Reason string
}

// Engine is an immutable set of RBAC filters. The zero Engine (and a nil
// one) allows every call.
type Engine struct {
	filters []xdsresource.RBAC
}

// New returns an engine for the filters, applied in order.
func New(filters []xdsresource.RBAC) *Engine {
	return &Engine{filters: filters}
}

// Policies reports how many policies the engine holds, over all filters.
func (e *Engine) Policies() int {
	if e == nil {
		return 0
	}
	n := 0
	for _, f := range e.filters {
		n += len(f.Policies)
	}
	return n
}

// Evaluate decides r: every filter must let it through.
func (e *Engine) Evaluate(r *Request) Decision {
	if e == nil {
		return Decision{Allowed: true}
	}
	ev := evaluation{r: r}
	for i := range e.filters {
		f := &e.filters[i]
		if f.Disabled {
			continue
		}
		matched := ""
		for j := range f.Policies {
			if ev.policy(&f.Policies[j]) {
				matched = f.Policies[j].Name
				break
			}
		}
		switch {
		case f.Action == xdsresource.RBACDeny && matched != "":
			return Decision{Filter: f.FilterName, Policy: matched, Reason: fmt.Sprintf(
				"rbac: %s denied by DENY policy %s (istiod names each AuthorizationPolicy rule <namespace>-<policy>-<rule index>)", r.Path, matched)}
		case f.Action == xdsresource.RBACAllow && matched == "":
			return Decision{Filter: f.FilterName, Reason: fmt.Sprintf(
				"rbac: %s matches no ALLOW policy (%s)", r.Path, policyNames(f.Policies))}
		}
	}
	return Decision{Allowed: true}
}

func policyNames(ps []xdsresource.RBACPolicy) string {
	if len(ps) == 0 {
		return "none: an ALLOW filter without policies refuses every call"
	}
	const show = 5
	names := make([]string, 0, show)
	for i, p := range ps {
		if i == show {
			names = append(names, fmt.Sprintf("and %d more", len(ps)-show))
			break
		}
		names = append(names, p.Name)
	}
	return "policies " + strings.Join(names, ", ")
}

// evaluation is one call's check, with the peer's names computed once.
type evaluation struct {
	r         *Request
	names     []string
	namesDone bool
}

func (ev *evaluation) policy(p *xdsresource.RBACPolicy) bool {
	return ev.any(p.Permissions) && ev.any(p.Principals)
}

func (ev *evaluation) any(rules []xdsresource.Rule) bool {
	for i := range rules {
		if ev.rule(&rules[i]) {
			return true
		}
	}
	return false
}

func (ev *evaluation) rule(rl *xdsresource.Rule) bool {
	r := ev.r
	switch rl.Kind {
	case xdsresource.RuleAny:
		return true
	case xdsresource.RuleAnd:
		for i := range rl.Rules {
			if !ev.rule(&rl.Rules[i]) {
				return false
			}
		}
		return true
	case xdsresource.RuleOr:
		return ev.any(rl.Rules)
	case xdsresource.RuleNot:
		return len(rl.Rules) == 1 && !ev.rule(&rl.Rules[0])
	case xdsresource.RuleHeader:
		v, ok := ev.header(rl.Header.Name)
		return matchHeader(&rl.Header, v, ok)
	case xdsresource.RulePath:
		return MatchString(&rl.String, r.Path)
	case xdsresource.RuleDestinationPort:
		return r.Destination.IsValid() && uint32(r.Destination.Port()) == rl.Port
	case xdsresource.RuleDestinationIP:
		return r.Destination.IsValid() && rl.CIDR.Contains(r.Destination.Addr().Unmap())
	case xdsresource.RuleSourceIP:
		return r.Source.IsValid() && rl.CIDR.Contains(r.Source.Addr().Unmap())
	case xdsresource.RuleServerName:
		return r.TLS != nil && MatchString(&rl.String, r.TLS.ServerName)
	case xdsresource.RuleAuthenticated:
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			return false
		}
		if !rl.HasString {
			return true
		}
		for _, n := range ev.peerNames() {
			if MatchString(&rl.String, n) {
				return true
			}
		}
		return false
	}
	return false // unknown kinds never match (xdsresource produces none)
}

// peerNames are the names an authenticated principal is matched against
// (gRFC A41): the URI SANs, else the DNS SANs, else the subject.
func (ev *evaluation) peerNames() []string {
	if ev.namesDone {
		return ev.names
	}
	ev.namesDone = true
	ev.names = principalNames(ev.r.TLS.PeerCertificates[0])
	return ev.names
}

func principalNames(c *x509.Certificate) []string {
	if len(c.URIs) > 0 {
		out := make([]string, len(c.URIs))
		for i, u := range c.URIs {
			out[i] = u.String()
		}
		return out
	}
	if len(c.DNSNames) > 0 {
		return c.DNSNames
	}
	return []string{c.Subject.String()}
}

// header returns a request header as Envoy sees it: the pseudo-headers of
// a gRPC call, and the metadata joined with commas. Binary (-bin) headers
// are not visible, as in gRPC.
func (ev *evaluation) header(name string) (string, bool) {
	r := ev.r
	switch name {
	case ":path":
		return r.Path, true
	case ":method":
		return "POST", true
	case ":authority", "host":
		return r.Authority, r.Authority != ""
	case ":scheme":
		if r.TLS != nil {
			return "https", true
		}
		return "http", true
	}
	if strings.HasSuffix(name, "-bin") {
		return "", false
	}
	vs, ok := r.Headers[name]
	if !ok {
		return "", false
	}
	return strings.Join(vs, ","), true
}

// matchHeader applies an Envoy header matcher: an absent header matches
// only an inverted presence test (or a presence test for absence).
func matchHeader(m *xdsresource.HeaderMatch, v string, present bool) bool {
	if m.Kind == xdsresource.MatchPresent {
		return (present == m.Present) != m.Invert
	}
	if !present {
		return false
	}
	var ok bool
	if m.Kind == xdsresource.MatchRange {
		ok = inRange(v, m.RangeStart, m.RangeEnd)
	} else {
		ok = MatchString(m, v)
	}
	return ok != m.Invert
}

func inRange(v string, start, end int64) bool {
	n, err := strconv.ParseInt(v, 10, 64)
	return err == nil && n >= start && n < end
}

// MatchString applies a string matcher of xdsresource (Kind exact, prefix,
// suffix, contains or regex; Value, Regex, IgnoreCase) to s.
func MatchString(m *xdsresource.HeaderMatch, s string) bool {
	if m.Kind == xdsresource.MatchRegex {
		return m.Regex != nil && m.Regex.MatchString(s)
	}
	want := m.Value
	if m.IgnoreCase {
		s, want = strings.ToLower(s), strings.ToLower(want)
	}
	switch m.Kind {
	case xdsresource.MatchExact:
		return s == want
	case xdsresource.MatchPrefix:
		return strings.HasPrefix(s, want)
	case xdsresource.MatchSuffix:
		return strings.HasSuffix(s, want)
	case xdsresource.MatchContains:
		return strings.Contains(s, want)
	}
	return false
}
