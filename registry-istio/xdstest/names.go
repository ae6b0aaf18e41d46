package xdstest

import (
	"net"
	"strconv"
)

// ListenerName is the LDS name a proxyless client asks istiod for: host:port.
func ListenerName(host string, port uint32) string {
	return net.JoinHostPort(host, strconv.FormatUint(uint64(port), 10))
}

// RouteName is the RDS name istiod puts in the listener: outbound|port||host.
func RouteName(host string, port uint32) string {
	return ClusterName(host, "", port)
}

// ClusterName is istiod's CDS name outbound|port|subset|host (subset may be
// empty).
func ClusterName(host, subset string, port uint32) string {
	return "outbound|" + strconv.FormatUint(uint64(port), 10) + "|" + subset + "|" + host
}
