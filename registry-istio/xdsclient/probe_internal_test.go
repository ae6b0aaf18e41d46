package xdsclient

import "testing"

// Connection probes dial the bootstrap's server address as it is written:
// host:port over TCP, unix sockets by path; anything else is not probed.
func TestProbeAddress(t *testing.T) {
	for _, tt := range []struct{ uri, network, addr string }{
		{"127.0.0.1:15010", "tcp", "127.0.0.1:15010"},
		{"istiod.istio-system.svc:15012", "tcp", "istiod.istio-system.svc:15012"},
		{"[::1]:15010", "tcp", "[::1]:15010"},
		{"unix:///etc/istio/proxy/XDS", "unix", "/etc/istio/proxy/XDS"},
		{"unix:relative.sock", "unix", "relative.sock"},
		{"dns:///istiod.istio-system.svc:15012", "tcp", "istiod.istio-system.svc:15012"},
		{"dns://8.8.8.8/istiod:15010", "tcp", "istiod:15010"},
		{"passthrough:///10.0.0.1:15010", "tcp", "10.0.0.1:15010"},
		{"dns:///istiod", "", ""},
		{"xds:///istiod:15010", "", ""},
	} {
		if n, a := probeAddress(tt.uri); n != tt.network || a != tt.addr {
			t.Errorf("probeAddress(%q) = %q %q, want %q %q", tt.uri, n, a, tt.network, tt.addr)
		}
	}
}
