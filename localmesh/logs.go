package localmesh

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// EnvKeepLogs is the variable that, set to any value, makes Stop keep the
// component logs of a mesh started without WithLogDir (they are kept anyway
// when Start fails).
const EnvKeepLogs = "SHOAL_KEEP_LOGS"

// WithLogDir sets the directory the components' logs go to
// (<component>.log, such as istiod-0.log). Each start of a component
// appends to its log after a line naming the component and the time, so a
// restarted istiod and a later mesh add to the same file; Stop never
// removes this directory. Without it the logs are in the run directory
// (Dir), removed by Stop unless WithKeepLogs, SHOAL_KEEP_LOGS or a failed
// Start keeps them.
func WithLogDir(dir string) Option { return meshOption(func(c *config) { c.logDir = dir }) }

// WithKeepLogs makes Stop keep the logs in the run directory (and remove
// the rest of it: keys, certificates, etcd's data).
func WithKeepLogs() Option { return meshOption(func(c *config) { c.keepLogs = true }) }

// LogDir is where the components' logs are: the directory of WithLogDir,
// else the run directory.
func (m *Mesh) LogDir() string {
	if m.cfg.logDir != "" {
		return m.cfg.logDir
	}
	return m.dir
}

// openLog opens dir/name.log for appending, creating dir and the file, and
// writes a line naming the component and the time of this start.
func openLog(dir, name string) (*os.File, error) {
	return openLogWith(dir, name, "started")
}

// openLogWith is openLog with the event the header line names.
func openLogWith(dir, name, event string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("localmesh: log directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600) //nolint:gosec // the caller's log directory
	if err != nil {
		return nil, fmt.Errorf("localmesh: log of %s: %w", name, err)
	}
	if _, err := fmt.Fprintf(f, "=== localmesh: %s %s at %s ===\n", name, event, time.Now().UTC().Format(time.RFC3339)); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("localmesh: log of %s: %w", name, err)
	}
	return f, nil
}

// appendLog appends a container's output b, under a header line, to the
// log at path when the container stops.
func appendLog(path string, b []byte) {
	f, err := openLogWith(filepath.Dir(path), strings.TrimSuffix(filepath.Base(path), ".log"), "container stopped; its output")
	if err != nil {
		return
	}
	defer func() { _ = f.Close() }()
	_, _ = f.Write(b)
}

// removeRunDir removes the run directory at Stop: all of it, or with keep
// everything but the logs (and the directory too when it holds none).
func (m *Mesh) removeRunDir(keep bool) {
	if m.dir == "" {
		return
	}
	if !keep || m.cfg.logDir != "" {
		_ = os.RemoveAll(m.dir)
		return
	}
	entries, _ := os.ReadDir(m.dir)
	logs := 0
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".log") {
			logs++
			continue
		}
		_ = os.RemoveAll(filepath.Join(m.dir, e.Name()))
	}
	if logs == 0 {
		_ = os.Remove(m.dir)
		return
	}
	m.cfg.logger.Info("localmesh: logs kept", "dir", m.dir)
}

// hasLogs reports whether the mesh's logs are somewhere after Stop.
func (m *Mesh) hasLogs() bool {
	logs, _ := filepath.Glob(filepath.Join(m.LogDir(), "*.log"))
	return len(logs) > 0
}
