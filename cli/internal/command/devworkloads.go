package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/shoalmesh/shoal/localmesh"
)

// The supervisor runs the workloads `shoal dev deploy` asks for: the mesh
// (and so localmesh.RunWorkload) lives in its process, its containers
// carry its PID, and they stop with it on `shoal dev down`. The two talk
// HTTP with JSON over a Unix socket in shoal dev's directory.

// devWorkloadSpec is what `shoal dev deploy` asks the supervisor to run.
type devWorkloadSpec struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Image     string            `json:"image"`
	Labels    map[string]string `json:"labels"`
	Env       map[string]string `json:"env"`
	ReadyPort int               `json:"readyPort"`
}

// devWorkload is a running workload as the supervisor reports it.
type devWorkload struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Image     string            `json:"image"`
	Labels    map[string]string `json:"labels"`
	IP        string            `json:"ip"`
	Started   time.Time         `json:"started"`
}

// workloadHost runs workloads in the supervisor.
type workloadHost struct {
	m      *localmesh.Mesh
	logger *slog.Logger
	marker string // exists while containers may run: 'down' cleans them if the supervisor died

	mu   sync.Mutex // serializes deploys and guards what follows
	eng  *localmesh.Engine
	runs map[string]*hostedWorkload // by namespace/name
}

type hostedWorkload struct {
	w    *localmesh.Workload
	info devWorkload
}

func newWorkloadHost(m *localmesh.Mesh, logger *slog.Logger, p devPaths) *workloadHost {
	return &workloadHost{m: m, logger: logger, marker: p.workloadsMarker(), runs: map[string]*hostedWorkload{}}
}

// serve answers on the Unix socket path until ctx ends.
func (h *workloadHost) serve(ctx context.Context, path string) (stop func(), err error) {
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("workloads socket %s: %w", path, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/workloads", h.handleRun)
	mux.HandleFunc("GET /v1/workloads", h.handleList)
	mux.HandleFunc("DELETE /v1/workloads/{namespace}/{name}", h.handleDelete)
	mux.HandleFunc("GET /v1/workloads/{namespace}/{name}/logs", h.handleLogs)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		<-done
		_ = os.Remove(path)
	}, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError is the body of a failed request.
type apiError struct {
	Error string `json:"error"`
}

func (h *workloadHost) handleRun(w http.ResponseWriter, r *http.Request) {
	var spec devWorkloadSpec
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&spec); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{err.Error()})
		return
	}
	info, err := h.run(r.Context(), spec)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, info)
}

func (h *workloadHost) handleList(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.list())
}

func (h *workloadHost) handleDelete(w http.ResponseWriter, r *http.Request) {
	found, err := h.stop(r.Context(), r.PathValue("namespace")+"/"+r.PathValue("name"))
	switch {
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
	case !found:
		writeJSON(w, http.StatusNotFound, apiError{"no such workload"})
	default:
		writeJSON(w, http.StatusOK, struct{}{})
	}
}

func (h *workloadHost) handleLogs(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	hw := h.runs[r.PathValue("namespace")+"/"+r.PathValue("name")]
	h.mu.Unlock()
	if hw == nil {
		writeJSON(w, http.StatusNotFound, apiError{"no such workload"})
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, hw.w.Logs(r.Context()))
}

// run starts the workload, replacing one of the same name.
func (h *workloadHost) run(ctx context.Context, spec devWorkloadSpec) (devWorkload, error) {
	if spec.Namespace == "" {
		spec.Namespace = "default"
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.eng == nil {
		if err := os.WriteFile(h.marker, nil, 0o600); err != nil {
			return devWorkload{}, err
		}
		eng, err := localmesh.NewEngine(ctx, h.logger)
		if err != nil {
			return devWorkload{}, err
		}
		h.eng = eng
	}
	key := spec.Namespace + "/" + spec.Name
	if old := h.runs[key]; old != nil {
		h.logger.Info("replacing workload", "workload", key)
		if err := old.w.Stop(ctx, 10*time.Second); err != nil {
			return devWorkload{}, fmt.Errorf("stop the running %s: %w", key, err)
		}
		delete(h.runs, key)
	}
	wl, err := h.m.RunWorkload(ctx, h.eng, localmesh.WorkloadSpec{
		Name: spec.Name, Namespace: spec.Namespace, Image: spec.Image,
		Labels: spec.Labels, Env: spec.Env, ReadyPort: spec.ReadyPort,
	})
	if err != nil {
		return devWorkload{}, err
	}
	info := devWorkload{
		Name: spec.Name, Namespace: spec.Namespace, Image: spec.Image,
		Labels: spec.Labels, IP: wl.IP(), Started: time.Now().UTC(),
	}
	h.runs[key] = &hostedWorkload{w: wl, info: info}
	h.logger.Info("workload running", "workload", key, "image", spec.Image, "ip", wl.IP())
	return info, nil
}

func (h *workloadHost) list() []devWorkload {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]devWorkload, 0, len(h.runs))
	for _, hw := range h.runs {
		out = append(out, hw.info)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Namespace+"/"+out[i].Name < out[j].Namespace+"/"+out[j].Name
	})
	return out
}

func (h *workloadHost) stop(ctx context.Context, key string) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hw := h.runs[key]
	if hw == nil {
		return false, nil
	}
	delete(h.runs, key)
	return true, hw.w.Stop(ctx, 10*time.Second)
}

// close stops every workload and releases the engine.
func (h *workloadHost) close(ctx context.Context) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for key, hw := range h.runs {
		if err := hw.w.Stop(ctx, 10*time.Second); err != nil {
			h.logger.Warn("stopping workload", "workload", key, "error", err)
		}
		delete(h.runs, key)
	}
	if h.eng != nil {
		_ = h.eng.Close()
		h.eng = nil
	}
	_ = os.Remove(h.marker)
}

// cleanStaleWorkloads removes the containers of a supervisor that died
// without stopping them (its PID is on them), when it had run any.
func cleanStaleWorkloads(ctx context.Context, p devPaths) {
	if _, err := os.Stat(p.workloadsMarker()); err != nil {
		return
	}
	eng, err := localmesh.NewEngine(ctx, slog.New(slog.DiscardHandler)) // removes containers whose owner is gone
	if err == nil {
		_ = eng.Close()
	}
	_ = os.Remove(p.workloadsMarker())
}

// devWorkloadClient talks to the supervisor's workloads socket.
type devWorkloadClient struct {
	http *http.Client
}

func newDevWorkloadClient(p devPaths) *devWorkloadClient {
	sock := p.socket()
	return &devWorkloadClient{http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}}
}

func (c *devWorkloadClient) do(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://supervisor"+path, r)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("the shoal dev supervisor does not answer (%w); restart it with 'shoal dev down' and 'shoal dev up'", err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e apiError
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("supervisor: %s: %s", resp.Status, b)
	}
	if out == nil {
		return nil
	}
	if s, ok := out.(*string); ok {
		*s = string(b)
		return nil
	}
	return json.Unmarshal(b, out)
}

func (p devPaths) socket() string          { return filepath.Join(p.dir, "workloads.sock") }
func (p devPaths) workloadsMarker() string { return filepath.Join(p.dir, "workloads") }
