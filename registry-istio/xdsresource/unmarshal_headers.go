package xdsresource

import (
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// headerMutationsFromProto reads one level's request_headers_to_add and
// request_headers_to_remove, with Envoy's checks: no pseudo-header and no
// host, no value Envoy would refuse, not both append and append_action.
func headerMutationsFromProto(add []*corev3.HeaderValueOption, remove []string) (HeaderMutations, error) {
	var hm HeaderMutations
	for i, o := range add {
		opt, err := headerValueOptionFromProto(o)
		if err != nil {
			return hm, fmt.Errorf("request_headers_to_add[%d]: %w", i, err)
		}
		hm.Add = append(hm.Add, opt)
	}
	for i, name := range remove {
		n, err := mutableHeaderName(name)
		if err != nil {
			return hm, fmt.Errorf("request_headers_to_remove[%d]: %w", i, err)
		}
		hm.Remove = append(hm.Remove, n)
	}
	return hm, nil
}

func headerValueOptionFromProto(o *corev3.HeaderValueOption) (HeaderValueOption, error) {
	var opt HeaderValueOption
	h := o.GetHeader()
	if h == nil {
		return opt, fmt.Errorf("no header")
	}
	name, err := mutableHeaderName(h.GetKey())
	if err != nil {
		return opt, err
	}
	value := h.GetValue()
	if raw := h.GetRawValue(); len(raw) > 0 {
		if value != "" {
			return opt, fmt.Errorf("header %q sets both value and raw_value", name)
		}
		value = string(raw)
	}
	if strings.ContainsAny(value, "\x00\r\n") {
		return opt, fmt.Errorf("header %q: value holds NUL, CR or LF", name)
	}
	opt = HeaderValueOption{Name: name, Value: value, KeepEmptyValue: o.GetKeepEmptyValue()}
	//nolint:staticcheck // append is deprecated but still sent by older control planes
	if ap := o.GetAppend(); ap != nil {
		if o.GetAppendAction() != corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD {
			return opt, fmt.Errorf("header %q sets both append and append_action; set only append_action", name)
		}
		if !ap.GetValue() {
			opt.Action = OverwriteIfExistsOrAdd
		}
		return opt, nil
	}
	switch a := o.GetAppendAction(); a {
	case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
		opt.Action = AppendIfExistsOrAdd
	case corev3.HeaderValueOption_ADD_IF_ABSENT:
		opt.Action = AddIfAbsent
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
		opt.Action = OverwriteIfExistsOrAdd
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
		opt.Action = OverwriteIfExists
	default:
		return opt, fmt.Errorf("header %q: append_action %v is not supported", name, a)
	}
	return opt, nil
}

// mutableHeaderName lower-cases a header name a route may add or remove,
// refusing what Envoy refuses: an empty name, a pseudo-header and host.
func mutableHeaderName(name string) (string, error) {
	n := strings.ToLower(name)
	switch {
	case n == "":
		return "", fmt.Errorf("empty header name")
	case strings.HasPrefix(n, ":") || n == "host":
		return "", fmt.Errorf("header %q may not be modified (pseudo-headers and host are not request headers a route can edit)", name)
	case strings.ContainsAny(n, " \t\x00\r\n"):
		return "", fmt.Errorf("header name %q holds whitespace or control characters", name)
	}
	return n, nil
}
