package registratione2e_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shoalmesh/shoal/proto/greet"
	"github.com/shoalmesh/shoal/proto/greet/greettriple"
	registryistio "github.com/shoalmesh/shoal/registry-istio"
	"github.com/shoalmesh/shoal/sdk/app"
	"github.com/shoalmesh/shoal/sdk/config"
	"github.com/shoalmesh/shoal/sdk/registry"
	"github.com/shoalmesh/shoal/sdk/tri"
)

// providerSpec is one provider replica, described as a container would be:
// everything it needs reaches it through environment variables.
type providerSpec struct {
	Name   string // pod-like name, reported in GreetResponse.served_by
	App    string // the application: replicas share its ServiceEntry
	IP     string // 127.0.0.x it listens on and registers
	Port   int
	Istiod string // istiod's xDS address
	// Kubeconfig is the API server the provider registers through.
	Kubeconfig string
	Namespace  string
}

// env is the provider's whole configuration.
func (s providerSpec) env() []string {
	labels, _ := json.Marshal(map[string]string{"app": s.App})
	return []string{
		"SHOAL_E2E_ROLE=provider",
		"SHOAL_XDS_ADDRESS=" + s.Istiod,
		"POD_NAME=" + s.Name,
		"POD_NAMESPACE=" + s.Namespace,
		"INSTANCE_IP=" + s.IP,
		"KUBECONFIG=" + s.Kubeconfig,
		"ISTIO_METAJSON_LABELS=" + string(labels),
		"PORT=" + strconv.Itoa(s.Port),
	}
}

// launcher starts provider replicas. The process launcher below is the only
// one today; a container launcher (localmesh's podman harness) can take its
// place with the same spec.
type launcher interface {
	Start(ctx context.Context, s providerSpec) (workload, error)
}

// workload is a running provider.
type workload interface {
	// Stop asks the provider to stop (SIGTERM) and waits until it exited.
	Stop(ctx context.Context) error
}

// processLauncher runs each provider as a child process of this test
// binary in provider mode.
type processLauncher struct{ logs io.Writer }

type process struct {
	cmd  *exec.Cmd
	done chan error
}

func (l processLauncher) Start(ctx context.Context, s providerSpec) (workload, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), s.env()...)
	cmd.Stderr = l.logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "READY") || strings.HasPrefix(line, "FAILED") {
				select {
				case ready <- line:
				default:
				}
			}
		}
		p.done <- cmd.Wait()
	}()
	select {
	case line := <-ready:
		if strings.HasPrefix(line, "READY") {
			return p, nil
		}
		_ = p.kill()
		return nil, fmt.Errorf("provider %s: %s", s.Name, line)
	case err := <-p.done:
		return nil, fmt.Errorf("provider %s exited before it was ready: %w", s.Name, err)
	case <-ctx.Done():
		_ = p.kill()
		return nil, fmt.Errorf("provider %s not ready: %w", s.Name, ctx.Err())
	}
}

func (p *process) Stop(ctx context.Context) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err // Stop may be called again
		return err
	case <-ctx.Done():
		return errors.Join(ctx.Err(), p.kill())
	}
}

func (p *process) kill() error {
	_ = p.cmd.Process.Kill()
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(10 * time.Second):
	}
	return nil
}

// greeter answers with the replica's name.
type greeter struct {
	greettriple.UnimplementedGreetServiceHandler
	name string
}

func (g *greeter) Greet(_ context.Context, req *greet.GreetRequest) (*greet.GreetResponse, error) {
	return &greet.GreetResponse{Greeting: "Hello, " + req.GetName(), ServedBy: g.name}, nil
}

// runProvider is the provider process: an ordinary Shoal application with
// the istio registry from its environment. It prints READY once it is
// registered and visible through istiod, and stops gracefully on SIGTERM
// (deregistering, which removes what it registered).
func runProvider() int {
	port, _ := strconv.Atoi(os.Getenv("PORT"))
	ip := os.Getenv("INSTANCE_IP")
	cfg, err := config.Load(config.WithoutFile(), noEnv,
		config.WithApplicationName(os.Getenv("POD_NAME")),
		config.WithRegistry(config.Registry{Name: "mesh", Kind: registryistio.Name}),
		config.WithProtocol(config.Protocol{Name: "tri", Host: ip, Port: port}),
		config.WithService(config.Service{Interface: greettriple.GreetServiceName}),
		config.Modify(func(c *config.Config) {
			drain := config.Duration(200 * time.Millisecond)
			c.Application.DrainDelay = &drain
			c.Logging.Level = "error" // istiod-0 is killed on purpose: no reconnect noise
		}))
	if err != nil {
		fmt.Println("FAILED", err)
		return 1
	}
	servers := tri.NewServers([]tri.Export{{Desc: &greettriple.GreetService_ServiceDesc, Impl: &greeter{name: os.Getenv("POD_NAME")}}})
	a, err := app.New(cfg,
		app.WithRegistryBuilders(registry.NewBuilders(registryistio.Builder())),
		app.WithServers(servers.Factory()), app.WithServing(servers.SetServing))
	if err != nil {
		fmt.Println("FAILED", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	start := time.Now()
	if err := a.Start(ctx); err != nil {
		fmt.Println("FAILED", strings.ReplaceAll(err.Error(), "\n", "; "))
		return 1
	}
	fmt.Printf("READY registered in %v\n", time.Since(start))
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.Stop(sctx); err != nil {
		fmt.Fprintln(os.Stderr, "provider stop:", err)
		return 1
	}
	return 0
}
