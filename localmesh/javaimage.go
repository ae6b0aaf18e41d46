package localmesh

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// JavaImage describes an image running one Java application jar. With
// LocalImages (the default) its runtime is made by jlink from the machine's
// JDK and the image is built FROM scratch (with the C libraries the runtime
// links against copied from the host), so that no base image is pulled;
// with PublicImages it is built FROM PublicJavaBase.
type JavaImage struct {
	// Name is the image repository, tagged localhost/<Name>:<hash>.
	Name string
	// Jar is the application's (shaded) jar; the entrypoint is
	// java [JVMArgs] -jar /app.jar, and a workload's Args follow.
	Jar string
	// JVMArgs go before -jar.
	JVMArgs []string
}

// javaModules are the JDK modules Dubbo 3.3 needs (java.beans lives in
// java.desktop; TLS needs jdk.crypto.ec).
var javaModules = []string{
	"java.base", "java.compiler", "java.desktop", "java.instrument", "java.logging",
	"java.management", "java.naming", "java.net.http", "java.scripting", "java.security.jgss",
	"java.sql", "java.xml", "jdk.crypto.ec", "jdk.unsupported", "jdk.zipfs",
}

// javaBase is what a Java image is built on: the base image and where its
// java executable is.
type javaBase struct {
	from string
	java string
}

var (
	// localJavaBase: the jlink runtime copied to /opt/java of a scratch image.
	localJavaBase = javaBase{from: "scratch", java: "/opt/java/bin/java"}
	// publicJavaBase: the Temurin image keeps its JRE in /opt/java/openjdk.
	publicJavaBase = javaBase{from: PublicJavaBase, java: "/opt/java/openjdk/bin/java"}
)

// javaDockerfile is the Dockerfile of a Java image on base: the build
// context's rootfs/ (the jar at /app.jar, and for a scratch base the
// runtime and its C libraries) over the base, java -jar as the entrypoint.
func javaDockerfile(base javaBase, jvmArgs []string) string {
	entry := append([]string{base.java}, jvmArgs...)
	entry = append(entry, "-jar", "/app.jar")
	quoted := make([]string, len(entry))
	for i, a := range entry {
		quoted[i] = strconv.Quote(a)
	}
	return "FROM " + base.from + "\nCOPY rootfs/ /\nENTRYPOINT [" + strings.Join(quoted, ", ") + "]\n"
}

// BuildJavaImage builds an image of the jar on the engine's image source
// (see JavaImage). A local runtime is made by jlink once per JDK and cached
// in the user cache directory; the public base is pulled if the engine
// lacks it and the pull policy allows, and its absence fails before
// anything is built.
func (e *Engine) BuildJavaImage(ctx context.Context, img JavaImage) (string, error) {
	if img.Name == "" || img.Jar == "" {
		return "", fmt.Errorf("localmesh: JavaImage needs Name and Jar, got %+v", img)
	}
	start := time.Now()
	base, baseID := localJavaBase, ""
	if e.images.source == PublicImages {
		base = e.publicJava
		id, err := e.ensureImage(ctx, base.from)
		if err != nil {
			return "", err
		}
		baseID = id
	}
	tmp, err := os.MkdirTemp("", "shoal-java-image-")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	rootfs := filepath.Join(tmp, "rootfs")
	// The tag covers the jar, the runtime (the jlink runtime's release
	// file, or the base image's ID: its tag may move to a newer JRE) and
	// the Dockerfile.
	h := sha256.New()
	_, _ = h.Write([]byte(base.from + "\n" + baseID + "\n"))
	if base == localJavaBase {
		runtime, err := e.localJavaRuntime(ctx, rootfs)
		if err != nil {
			return "", err
		}
		if err := hashFile(h, filepath.Join(runtime, "release")); err != nil {
			return "", err
		}
	}
	if err := copyFile(img.Jar, filepath.Join(rootfs, "app.jar")); err != nil {
		return "", err
	}
	if err := hashFile(h, img.Jar); err != nil {
		return "", err
	}
	dockerfile := javaDockerfile(base, img.JVMArgs)
	_, _ = h.Write([]byte(dockerfile))
	tag := hex.EncodeToString(h.Sum(nil))[:16]
	ref, err := e.buildImage(ctx, tmp, img.Name, tag, dockerfile)
	if err == nil {
		e.logger.Debug("localmesh: Java image ready", "image", ref, "source", e.images.source, "took", time.Since(start).Round(time.Millisecond))
	}
	return ref, err
}

// localJavaRuntime puts the jlink runtime (at /opt/java) and the host's C
// libraries it needs into rootfs, and returns the runtime's cache directory.
func (e *Engine) localJavaRuntime(ctx context.Context, rootfs string) (string, error) {
	runtime, err := jlinkRuntime(ctx)
	if err != nil {
		return "", err
	}
	if err := copyTree(runtime, filepath.Join(rootfs, "opt", "java")); err != nil {
		return "", err
	}
	libs, err := sharedLibraries(ctx, runtime)
	if err != nil {
		return "", err
	}
	for _, l := range libs {
		if err := copyFile(l, filepath.Join(rootfs, l)); err != nil {
			return "", err
		}
	}
	return runtime, nil
}

// hashFile writes the content of path into h.
func hashFile(h io.Writer, path string) error {
	f, err := os.Open(path) //nolint:gosec // the caller's jar and our cache
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	_, err = io.Copy(h, f)
	return err
}

// jlinkRuntime returns a jlink-made runtime for the JDK on PATH, building it
// into the user cache directory the first time.
func jlinkRuntime(ctx context.Context) (string, error) {
	jlink, err := exec.LookPath("jlink")
	if err != nil {
		return "", fmt.Errorf("localmesh: no jlink on PATH (%w); install a JDK 17+ (apt-get install openjdk-17-jdk-headless)", err)
	}
	resolved, err := filepath.EvalSymlinks(jlink)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(resolved + "\n" + strings.Join(javaModules, ",")))
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "shoal", "jre", hex.EncodeToString(sum[:8]))
	if _, err := os.Stat(filepath.Join(dir, "bin", "java")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o750); err != nil {
		return "", err
	}
	tmp := dir + fmt.Sprintf(".tmp%d", os.Getpid())
	_ = os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, jlink, "--add-modules", strings.Join(javaModules, ","),
		"--strip-debug", "--no-header-files", "--no-man-pages", "--output", tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("localmesh: jlink: %w\n%s", err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.RemoveAll(tmp)
		if _, serr := os.Stat(filepath.Join(dir, "bin", "java")); serr == nil {
			return dir, nil // a concurrent run made it
		}
		return "", err
	}
	return dir, nil
}

// sharedLibraries lists the host's C libraries (and the dynamic loader) that
// the runtime's executables and libraries need, found with ldd.
func sharedLibraries(ctx context.Context, runtime string) ([]string, error) {
	var objs []string
	err := filepath.WalkDir(runtime, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && (strings.HasSuffix(p, ".so") || filepath.Base(filepath.Dir(p)) == "bin") {
			objs = append(objs, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, o := range objs {
		res, err := exec.CommandContext(ctx, "ldd", o).Output()
		if err != nil {
			continue // not a dynamic object
		}
		sc := bufio.NewScanner(bytes.NewReader(res))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			var path string
			switch {
			case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
				path = f[2]
			case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
				path = f[0] // the loader
			}
			if path == "" || seen[path] || strings.HasPrefix(path, runtime) {
				continue
			}
			seen[path] = true
			out = append(out, path)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("localmesh: ldd found no C library for the Java runtime in %s", runtime)
	}
	return out, nil
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755) //nolint:gosec // an image's file tree
		case d.Type()&os.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target) //nolint:gosec // our own cached runtime, copied into a temporary build context
		default:
			return copyFile(p, target)
		}
	})
}

// copyFile copies src (following symlinks) to dst with src's mode.
func copyFile(src, dst string) error {
	in, err := os.Open(src) //nolint:gosec // files chosen by this package
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil { //nolint:gosec // an image's file tree
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, st.Mode().Perm()) //nolint:gosec // an image's file tree
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}
