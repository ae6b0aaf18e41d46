package triple

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
)

type serviceKey struct{ group, name, version string }

type service struct {
	desc    *ServiceDesc
	impl    any
	group   string
	version string
	methods map[string]*MethodDesc
	streams map[string]*StreamDesc
	builtin bool
}

// RegisterOption configures one registration.
type RegisterOption func(*serviceKey)

// ServiceGroup exports the service under a Dubbo group.
func ServiceGroup(g string) RegisterOption { return func(k *serviceKey) { k.group = g } }

// ServiceVersion exports the service under a Dubbo version.
func ServiceVersion(v string) RegisterOption { return func(k *serviceKey) { k.version = v } }

// Register exports impl, which must implement desc.HandlerType, under the
// given group and version. Registering the same key twice is an error.
func (s *Server) Register(desc *ServiceDesc, impl any, opts ...RegisterOption) error {
	if desc == nil || desc.ServiceName == "" {
		return errors.New("triple: Register needs a service descriptor with a name")
	}
	if desc.HandlerType != nil {
		want := reflect.TypeOf(desc.HandlerType).Elem()
		if !reflect.TypeOf(impl).Implements(want) {
			return fmt.Errorf("triple: Register %s: %T does not implement %v", desc.ServiceName, impl, want)
		}
	}
	key := serviceKey{name: desc.ServiceName}
	for _, o := range opts {
		o(&key)
	}
	svc := &service{
		desc: desc, impl: impl, group: key.group, version: key.version,
		methods: map[string]*MethodDesc{}, streams: map[string]*StreamDesc{},
	}
	for i := range desc.Methods {
		svc.methods[desc.Methods[i].MethodName] = &desc.Methods[i]
	}
	for i := range desc.Streams {
		svc.streams[desc.Streams[i].StreamName] = &desc.Streams[i]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.services[key]; dup {
		return fmt.Errorf("triple: %s (group %q, version %q) is already registered", key.name, key.group, key.version)
	}
	s.services[key] = svc
	if s.health != nil {
		s.health.SetServing(desc.ServiceName, true)
	}
	return nil
}

// lookup applies Dubbo Java's rules: the exact group and version, then
// version 1.0.0, then no version. The group never falls back.
func (s *Server) lookup(group, name, version string) *service {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if svc := s.services[serviceKey{group, name, version}]; svc != nil {
		return svc
	}
	if svc := s.services[serviceKey{group, name, "1.0.0"}]; svc != nil {
		return svc
	}
	if svc := s.services[serviceKey{group, name, ""}]; svc != nil {
		return svc
	}
	// Health and reflection answer whatever group a tool sends along
	// (grpcurl -H adds headers to its reflection calls too).
	if svc := s.services[serviceKey{"", name, ""}]; svc != nil && svc.builtin {
		return svc
	}
	return nil
}

// served lists what is registered, for "not found" errors.
func (s *Server) served(name string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for k := range s.services {
		if k.name == name {
			out = append(out, fmt.Sprintf("group %q version %q", k.group, k.version))
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "the service is not registered here"
	}
	return "registered as: " + strings.Join(out, ", ")
}

// ServiceNames lists the registered service names.
func (s *Server) ServiceNames() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var names []string
	for k := range s.services {
		if !slices.Contains(names, k.name) {
			names = append(names, k.name)
		}
	}
	sort.Strings(names)
	return names
}

// splitPath splits "/[context/]service/method".
func splitPath(p string) (svc, method string, ok bool) {
	p = strings.TrimSuffix(p, "/")
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "", "", false
	}
	method = p[i+1:]
	p = p[:i]
	j := strings.LastIndexByte(p, '/')
	svc = p[j+1:]
	return svc, method, svc != "" && method != ""
}

// resolve finds the service and method of a request.
func (s *Server) resolve(r *http.Request) (*service, *MethodDesc, *StreamDesc, CallInfo, *Error) {
	ci := CallInfo{Group: r.Header.Get(hdrTriGroup), Version: r.Header.Get(hdrTriVersion), Application: r.Header.Get(hdrTriApp), Authority: r.Host}
	svc, md, sd, err := s.resolveCall(r.URL.Path, &ci)
	return svc, md, sd, ci, err
}

// resolveCall finds the service and method of path; ci carries the group,
// version and application in, and gets the service and method names.
func (s *Server) resolveCall(path string, ci *CallInfo) (*service, *MethodDesc, *StreamDesc, *Error) {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	name, method, ok := splitPath(path)
	if !ok {
		return nil, nil, nil, Errorf(CodeUnimplemented, "malformed path %q: want /service/Method", path)
	}
	ci.Service, ci.Method = name, method
	svc := s.lookup(ci.Group, name, ci.Version)
	if svc == nil {
		return nil, nil, nil, Errorf(CodeUnimplemented, "unknown service %s (group %q, version %q): %s", name, ci.Group, ci.Version, s.served(name))
	}
	md, sd := svc.find(method)
	if md == nil && sd == nil {
		return nil, nil, nil, Errorf(CodeUnimplemented, "unknown method %s for service %s", method, name)
	}
	return svc, md, sd, nil
}

// find looks a method up by name, then with its first letter lower-cased
// (Java method names), as Dubbo Java does.
func (svc *service) find(method string) (*MethodDesc, *StreamDesc) {
	if md := svc.methods[method]; md != nil {
		return md, nil
	}
	if sd := svc.streams[method]; sd != nil {
		return nil, sd
	}
	for _, m := range [2]string{lowerFirst(method), upperFirst(method)} {
		if m == method {
			continue
		}
		if md := svc.methods[m]; md != nil {
			return md, nil
		}
		if sd := svc.streams[m]; sd != nil {
			return nil, sd
		}
	}
	return nil, nil
}

func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

func lowerFirst(s string) string {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return s
	}
	return string(s[0]+'a'-'A') + s[1:]
}
