package config

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"unicode"
)

type problems struct {
	file string
	errs []error
}

func (p *problems) add(path, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s: %s", p.file, path, fmt.Sprintf(format, args...)))
}

// validate reports every problem, each with the field path and the fix.
func (c *Config) validate(file string) error {
	p := &problems{file: file}
	if strings.TrimSpace(c.Application.Name) == "" {
		p.add("application.name", "empty; name the application, such as greeter")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, strings.ToLower(c.Logging.Level)) {
		p.add("logging.level", "%q is not a level; use debug, info, warn or error", c.Logging.Level)
	}
	if !slices.Contains([]string{"text", "json"}, strings.ToLower(c.Logging.Format)) {
		p.add("logging.format", "%q is not a format; use text or json", c.Logging.Format)
	}

	registries := map[string]bool{}
	for i, r := range c.Registries {
		path := fmt.Sprintf("registries[%d]", i)
		switch {
		case r.Name == "":
			p.add(path+".name", "empty; name the registry, such as local, so services and references can refer to it")
		case registries[r.Name]:
			p.add(path+".name", "%q is used twice; give each registry its own name", r.Name)
		}
		registries[r.Name] = true
		if r.Kind == "" {
			p.add(path+".kind", "empty; set it to file, direct, or a registry plug-in's name such as istio")
		}
		if r.Kind == "direct" && r.Address == "" {
			p.add(path+".address", "empty; a direct registry needs provider URLs such as tri://127.0.0.1:50051")
		}
	}
	refRegistry := func(path, name string) {
		if !registries[name] {
			p.add(path, "%q is not a registry; use one of the names under registries: %s", name, strings.Join(slices.Sorted(maps.Keys(registries)), ", "))
		}
	}

	protocols := map[string]bool{}
	ports := map[int]string{}
	for i, pr := range c.Protocols {
		path := fmt.Sprintf("protocols[%d]", i)
		if pr.Name != "tri" {
			p.add(path+".name", "%q is not supported; use tri (Triple, which also serves gRPC and HTTP/1 JSON)", pr.Name)
		}
		if protocols[pr.Name] {
			p.add(path+".name", "%q appears twice; list each protocol once", pr.Name)
		}
		protocols[pr.Name] = true
		if pr.Port < 0 || pr.Port > 65535 {
			p.add(path+".port", "%d is out of range; use 1 to 65535, or 0 for any free port", pr.Port)
		}
		if prev, dup := ports[pr.Port]; dup && pr.Port != 0 {
			p.add(path+".port", "%d is also used by protocol %s; give each protocol its own port", pr.Port, prev)
		}
		ports[pr.Port] = pr.Name
		if pr.Host != "" && net.ParseIP(pr.Host) == nil && pr.Host != "localhost" {
			p.add(path+".host", "%q is not an IP address; use an address such as 0.0.0.0 or 127.0.0.1, or leave it empty for all interfaces", pr.Host)
		}
	}

	type key struct{ iface, group, version string }
	services := map[key]bool{}
	for i, s := range c.Services {
		path := fmt.Sprintf("services[%d]", i)
		if strings.TrimSpace(s.Interface) == "" {
			p.add(path+".interface", "empty; set it to the interface name the service implements, such as greet.GreetService")
		}
		if s.Group == "*" || s.Version == "*" {
			p.add(path, "group and version of a provided service cannot be \"*\"; give the real group and version")
		}
		k := key{s.Interface, s.Group, s.Version}
		if services[k] && s.Interface != "" {
			p.add(path, "%s (group %q, version %q) is provided twice; remove one", s.Interface, s.Group, s.Version)
		}
		services[k] = true
		for j, name := range s.Protocols {
			if !protocols[name] {
				p.add(fmt.Sprintf("%s.protocols[%d]", path, j), "%q is not a protocol; use one of the names under protocols", name)
			}
		}
		for j, name := range s.Registries {
			refRegistry(fmt.Sprintf("%s.registries[%d]", path, j), name)
		}
	}

	names := map[string]bool{}
	for i, r := range c.References {
		path := fmt.Sprintf("references[%d]", i)
		if strings.TrimSpace(r.Interface) == "" {
			p.add(path+".interface", "empty; set it to the service's interface name such as greet.GreetService")
		}
		if names[r.Name] && r.Name != "" {
			p.add(path+".name", "%q is used twice; give each reference its own name", r.Name)
		}
		names[r.Name] = true
		if r.ProvidedBy != "" {
			switch {
			case strings.TrimSpace(r.ProvidedBy) == "" || strings.ContainsFunc(r.ProvidedBy, unicode.IsSpace):
				p.add(path+".providedBy", "%q has spaces; name the application that provides %s, such as greeter", r.ProvidedBy, r.Interface)
			case r.URL != "":
				p.add(path+".providedBy", "%q is set with url: url calls those providers directly and skips discovery; remove one of them", r.ProvidedBy)
			case strings.Contains(r.Interface, "://"):
				p.add(path+".providedBy", "%q is set with interface %q, a target that already says where to go; write the interface name with providedBy, or the target alone", r.ProvidedBy, r.Interface)
			}
		}
		if r.URL != "" {
			for u := range strings.SplitSeq(r.URL, ",") {
				if err := checkURL(strings.TrimSpace(u)); err != nil {
					p.add(path+".url", "%v", err)
				}
			}
		} else {
			refRegistry(path+".registry", r.Registry)
		}
		if !slices.Contains([]string{"failover", "failfast"}, r.Cluster) {
			p.add(path+".cluster", "%q is not a cluster strategy; use failover or failfast", r.Cluster)
		}
		if r.Balancer == "ring_hash" && r.HashKey == "" {
			p.add(path+".hashKey", "empty; ring_hash needs the header or attachment to hash, such as x-user")
		}
		if r.Retries != nil && *r.Retries > 100 {
			p.add(path+".retries", "%d is too many; use at most 100 (2 is the usual)", *r.Retries)
		}
	}
	for _, side := range []struct {
		name  string
		names []string
	}{{"client", c.Filters.Client}, {"server", c.Filters.Server}} {
		seen := map[string]bool{}
		for i, n := range side.names {
			path := fmt.Sprintf("filters.%s[%d]", side.name, i)
			if strings.TrimSpace(n) == "" {
				p.add(path, "empty; name a registered filter")
			} else if seen[n] {
				p.add(path, "%q is listed twice; list each filter once, in the order it should run", n)
			}
			seen[n] = true
		}
	}
	c.Observability.validate(p)
	return errors.Join(p.errs...)
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "tri" || u.Host == "" {
		return fmt.Errorf("%q is not a provider URL; write tri://host:port", raw)
	}
	if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" {
		return fmt.Errorf("%q has no port; write tri://host:port", raw)
	}
	return nil
}

// Logger returns a slog logger writing to stderr at the configured level
// and format.
func (c *Config) Logger() *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Logging.Level))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if strings.EqualFold(c.Logging.Format, "json") {
		h = slog.NewJSONHandler(os.Stderr, opts)
	} else {
		h = slog.NewTextHandler(os.Stderr, opts)
	}
	return slog.New(h).With("application", c.Application.Name)
}
