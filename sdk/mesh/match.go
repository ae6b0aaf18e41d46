package mesh

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/shoalmesh/shoal/sdk/call"
)

// MatchKind says how a StringMatch compares.
type MatchKind uint8

// The string match kinds. MatchAny is the zero value and matches anything.
const (
	MatchAny MatchKind = iota
	MatchExact
	MatchPrefix
	MatchSuffix
	MatchContains
	MatchRegex
)

var matchKindNames = [...]string{"any", "exact", "prefix", "suffix", "contains", "regex"}

func (k MatchKind) String() string {
	if int(k) < len(matchKindNames) {
		return matchKindNames[k]
	}
	return fmt.Sprintf("matchkind(%d)", uint8(k))
}

// StringMatch is an immutable string matcher. Build one with Exact, Prefix,
// Suffix, Contains or Regex; the zero value matches every string.
type StringMatch struct {
	kind       MatchKind
	value      string
	ignoreCase bool
	re         *regexp.Regexp
}

// Exact matches strings equal to v.
func Exact(v string) StringMatch { return StringMatch{kind: MatchExact, value: v} }

// Prefix matches strings starting with v.
func Prefix(v string) StringMatch { return StringMatch{kind: MatchPrefix, value: v} }

// Suffix matches strings ending with v.
func Suffix(v string) StringMatch { return StringMatch{kind: MatchSuffix, value: v} }

// Contains matches strings containing v.
func Contains(v string) StringMatch { return StringMatch{kind: MatchContains, value: v} }

// Regex matches strings that the RE2 expression matches in full, as Envoy's
// safe_regex does: "v1" does not match "v10". It fails on a bad expression.
func Regex(expr string) (StringMatch, error) {
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil {
		return StringMatch{}, fmt.Errorf("regex %q does not compile: %w; write an RE2 expression (https://github.com/google/re2/wiki/Syntax)", expr, err)
	}
	return StringMatch{kind: MatchRegex, value: expr, re: re}, nil
}

// MustRegex is Regex for expressions known to be valid; it panics otherwise.
func MustRegex(expr string) StringMatch {
	m, err := Regex(expr)
	if err != nil {
		panic(err)
	}
	return m
}

// IgnoringCase returns a copy of m that compares case-insensitively
// (Istio's ignoreUriCase).
func (m StringMatch) IgnoringCase() StringMatch {
	m.ignoreCase = true
	if m.kind == MatchRegex {
		m.re = regexp.MustCompile(`(?i)^(?:` + m.value + `)$`)
	} else {
		m.value = strings.ToLower(m.value)
	}
	return m
}

// Kind returns how m compares.
func (m StringMatch) Kind() MatchKind { return m.kind }

// Value returns the compared string or the regular expression.
func (m StringMatch) Value() string { return m.value }

// IgnoreCase reports whether m compares case-insensitively.
func (m StringMatch) IgnoreCase() bool { return m.ignoreCase }

// IsAny reports whether m is the zero matcher that matches everything.
func (m StringMatch) IsAny() bool { return m.kind == MatchAny }

// Match reports whether s matches.
func (m StringMatch) Match(s string) bool { return m.match(s) }

// match is Match without copying the matcher, for the call path.
func (m *StringMatch) match(s string) bool {
	if m.ignoreCase && m.kind != MatchRegex {
		if isASCII(s) {
			return m.matchLowerASCII(s)
		}
		s = strings.ToLower(s)
	}
	switch m.kind {
	case MatchAny:
		return true
	case MatchExact:
		return s == m.value
	case MatchPrefix:
		return strings.HasPrefix(s, m.value)
	case MatchSuffix:
		return strings.HasSuffix(s, m.value)
	case MatchContains:
		return strings.Contains(s, m.value)
	case MatchRegex:
		return m.re.MatchString(s)
	}
	return false
}

// matchLowerASCII is match on strings.ToLower(s) for an ASCII s, without
// building the lower-case copy. m.value is already lower-case.
func (m *StringMatch) matchLowerASCII(s string) bool {
	v := m.value
	switch m.kind {
	case MatchAny:
		return true
	case MatchExact:
		return len(s) == len(v) && equalLowerASCII(s, v)
	case MatchPrefix:
		return len(s) >= len(v) && equalLowerASCII(s[:len(v)], v)
	case MatchSuffix:
		return len(s) >= len(v) && equalLowerASCII(s[len(s)-len(v):], v)
	case MatchContains:
		for i := 0; i+len(v) <= len(s); i++ {
			if equalLowerASCII(s[i:i+len(v)], v) {
				return true
			}
		}
	}
	return false
}

// equalLowerASCII reports whether the ASCII string s, lower-cased, equals
// lower, which has the same length.
func equalLowerASCII(s, lower string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func (m StringMatch) String() string {
	if m.kind == MatchAny {
		return "any"
	}
	return fmt.Sprintf("%s(%q)", m.kind, m.value)
}

// HeaderMatch tests one request header or Triple attachment (they are the
// same thing on the wire).
type HeaderMatch struct {
	// Name is the header name; it is compared case-insensitively.
	Name string
	// Value must match the header's value. The zero StringMatch makes this a
	// presence test: the header must be present, with any value.
	Value StringMatch
	// Invert turns the result around. An inverted value match also matches
	// when the header is absent (Istio's withoutHeaders); an inverted
	// presence test requires the header to be absent.
	Invert bool
}

// Matches reports whether the attachments satisfy the header match.
func (h *HeaderMatch) Matches(a call.Attachments) bool {
	v, ok := a.Get(h.Name)
	r := ok && h.Value.Match(v)
	return r != h.Invert
}

// RouteMatch is one set of conditions, all of which must hold (one Istio
// HTTPMatchRequest). The zero RouteMatch matches every call.
type RouteMatch struct {
	// Name is optional and appears in logs and metrics.
	Name string
	// Path matches the call's "/Service/Method" path.
	Path StringMatch
	// Headers must all match.
	Headers []HeaderMatch
	// SourceLabels must all be present with equal values on the calling
	// workload; an empty map matches any caller.
	SourceLabels map[string]string
}

// Matches reports whether a call with this path and these attachments, made
// by a workload with the given labels, satisfies every condition.
func (m *RouteMatch) Matches(path string, a call.Attachments, source map[string]string) bool {
	if !m.Path.Match(path) {
		return false
	}
	for i := range m.Headers {
		if !m.Headers[i].Matches(a) {
			return false
		}
	}
	return selects(m.SourceLabels, source)
}
