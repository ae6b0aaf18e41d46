// Package java is the Java Dubbo 3.3 peer of the interop suite: the IDL
// provider and the case-driven IDL consumer of samples/java, run as JVM
// processes on loopback that speak package proc's protocol. Both also serve
// and call GreetingService, a plain Java interface, in wrapper mode (hessian2);
// the provider also serves QuoteService, whose consumer is consumer-quote.
package java

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/shoalmesh/shoal/interop/cases"
	"github.com/shoalmesh/shoal/interop/peer"
	"github.com/shoalmesh/shoal/interop/peer/proc"
)

// Jar is the samples' fat jar, built by samples/java/build.sh.
func Jar(repoRoot string) (string, error) {
	jar := filepath.Join(repoRoot, "samples", "java", "target", "shoal-java-samples.jar")
	if _, err := os.Stat(jar); err != nil {
		return "", fmt.Errorf("the Java samples are not built (%w); run samples/java/build.sh or make deps", err)
	}
	return jar, nil
}

// Args is the java command line that runs a command of the samples' jar
// (provider-idl, consumer-idl, consumer-quote) with args on loopback.
// Dubbo replaces every 127.x target with the host's first network address
// (NetUtils.filterLocalHost); ignoring every interface makes that 127.0.0.1
// again, so calls stay on loopback like the rest of the suite.
func Args(jar string, args ...string) []string {
	return append([]string{"-Ddubbo.network.interface.ignored=.*", "-jar", jar}, args...)
}

// Server runs the Java IDL provider.
type Server struct{ Jar string }

// Name implements peer.Server.
func (Server) Name() string { return "java" }

// Supports implements peer.Server.
func (Server) Supports(string) bool { return true }

// Start implements peer.Server: the provider exports greet.GreetService plain
// and under peer.Group/peer.Version, and prints READY. It reports the group
// and version the request carried (its tri-service-* headers), not those of
// the export that served it, so a client that drops them fails the
// group-version cases. The plain export goes last: Dubbo's bare-path entry,
// which serves calls with no exact match, is the last export's, so an
// ungrouped call is served by the ungrouped export.
func (s Server) Start(ctx context.Context) (string, func(), error) {
	port, err := proc.FreePort()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command("java", Args(s.Jar, "provider-idl", "--port", strconv.Itoa(port),
		"--export", peer.Group+":"+peer.Version, "--export", ":")...)
	stop, err := proc.StartServer(ctx, cmd, 90*time.Second)
	if err != nil {
		return "", nil, fmt.Errorf("the Java provider: %w", err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), stop, nil
}

// Client runs the Java IDL consumer.
type Client struct{ Jar string }

// Name implements peer.Client.
func (Client) Name() string { return "java" }

// Run implements peer.Client: one JVM runs every case.
func (c Client) Run(ctx context.Context, addr string, cs []cases.Case) ([]cases.Outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "java", Args(c.Jar, "consumer-idl", "--target", "tri://"+addr)...)
	return proc.RunClient(cmd, cs)
}
