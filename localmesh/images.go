package localmesh

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// ImageSource selects where istiod and the Java runtime come from.
type ImageSource int

const (
	// LocalImages (the default) builds everything on this machine: istiod
	// runs as the pilot-discovery process controlplane.Builder built, and
	// Java images hold a jlink runtime FROM scratch. Nothing is pulled.
	LocalImages ImageSource = iota
	// PublicImages runs istiod as a container of PublicIstiodImage and
	// builds Java images FROM PublicJavaBase, both pulled from Docker Hub
	// by the container engine. etcd, kube-apiserver and
	// kube-controller-manager still run as the locally built processes.
	PublicImages
)

// The public images, pinned by tag. The istiod that controlplane.Builder
// builds is istio.io/istio master of 2026-08-27 (VERSION 1.31, with
// istio.io/api at its v1.31.0 tag); 1.31.4 is the newest patch release of
// that family that istio.io/api and istio.io/client-go are tagged with.
const (
	PublicIstiodImage = "docker.io/istio/pilot:1.31.4"
	PublicJavaBase    = "docker.io/library/eclipse-temurin:17-jre"
)

// Environment variables that choose the image source and pull policy when
// no option does.
const (
	EnvImages = "SHOAL_IMAGES" // "local" (default) or "public"
	EnvPull   = "SHOAL_PULL"   // "missing" (default) or "never"
)

// String returns "local" or "public", the values SHOAL_IMAGES takes.
func (s ImageSource) String() string {
	switch s {
	case LocalImages:
		return "local"
	case PublicImages:
		return "public"
	default:
		return fmt.Sprintf("ImageSource(%d)", int(s))
	}
}

// ParseImageSource parses a value of SHOAL_IMAGES.
func ParseImageSource(s string) (ImageSource, error) {
	switch s {
	case "local":
		return LocalImages, nil
	case "public":
		return PublicImages, nil
	}
	return 0, fmt.Errorf("localmesh: unknown image source %q; want %q (istiod and the Java runtime built on this machine, the default) or %q (%s and %s from Docker Hub)",
		s, "local", "public", PublicIstiodImage, PublicJavaBase)
}

// PullPolicy says whether the engine may pull a public image it lacks.
type PullPolicy int

const (
	// PullMissing (the default) pulls a public image the engine does not
	// have yet.
	PullMissing PullPolicy = iota
	// PullNever uses only images the engine already has (pulled
	// beforehand, e.g. by a CI step), and fails at once otherwise.
	PullNever
)

// String returns "missing" or "never", the values SHOAL_PULL takes.
func (p PullPolicy) String() string {
	switch p {
	case PullMissing:
		return "missing"
	case PullNever:
		return "never"
	default:
		return fmt.Sprintf("PullPolicy(%d)", int(p))
	}
}

// ParsePullPolicy parses a value of SHOAL_PULL.
func ParsePullPolicy(s string) (PullPolicy, error) {
	switch s {
	case "missing":
		return PullMissing, nil
	case "never":
		return PullNever, nil
	}
	return 0, fmt.Errorf("localmesh: unknown pull policy %q; want %q (pull a public image the engine lacks, the default) or %q (use only images already present)",
		s, "missing", "never")
}

// imageConfig is the part of Start's and NewEngine's configuration that
// chooses images. Options set it; what they leave unset comes from the
// environment.
type imageConfig struct {
	source    ImageSource
	pull      PullPolicy
	sourceSet bool
	pullSet   bool
}

// resolve fills what no option set from SHOAL_IMAGES and SHOAL_PULL, and
// validates the result.
func (c *imageConfig) resolve() error {
	if !c.sourceSet {
		if v, ok := os.LookupEnv(EnvImages); ok && v != "" {
			s, err := ParseImageSource(v)
			if err != nil {
				return fmt.Errorf("%s=%q: %w", EnvImages, v, err)
			}
			c.source = s
		}
	}
	if !c.pullSet {
		if v, ok := os.LookupEnv(EnvPull); ok && v != "" {
			p, err := ParsePullPolicy(v)
			if err != nil {
				return fmt.Errorf("%s=%q: %w", EnvPull, v, err)
			}
			c.pull = p
		}
	}
	if c.source != LocalImages && c.source != PublicImages {
		return fmt.Errorf("localmesh: %v is neither LocalImages nor PublicImages", c.source)
	}
	if c.pull != PullMissing && c.pull != PullNever {
		return fmt.Errorf("localmesh: %v is neither PullMissing nor PullNever", c.pull)
	}
	return nil
}

// options returns options that reproduce c, for an Engine that Start makes.
func (c imageConfig) options() []EngineOption {
	return []EngineOption{WithImageSource(c.source), WithPullPolicy(c.pull)}
}

// ImageOption configures both Start and NewEngine.
type ImageOption interface {
	Option
	EngineOption
}

type imageOption func(*imageConfig)

func (o imageOption) applyToMesh(c *config)         { o(&c.images) }
func (o imageOption) applyToEngine(c *engineConfig) { o(&c.images) }

// WithImageSource chooses where istiod and the Java runtime come from; it
// overrides SHOAL_IMAGES. Give Start and NewEngine the same source.
func WithImageSource(s ImageSource) ImageOption {
	return imageOption(func(c *imageConfig) { c.source, c.sourceSet = s, true })
}

// WithPullPolicy says whether a missing public image may be pulled; it
// overrides SHOAL_PULL. It does not matter for LocalImages.
func WithPullPolicy(p PullPolicy) ImageOption {
	return imageOption(func(c *imageConfig) { c.pull, c.pullSet = p, true })
}

// ErrImageUnavailable is wrapped by the error of Start, BuildJavaImage and
// the like when a public image is neither in the engine nor pullable.
var ErrImageUnavailable = errors.New("public image unavailable")

// pullLimit bounds one pull: long enough for istio/pilot on a slow link,
// short enough that an engine whose registry traffic is dropped fails.
const pullLimit = 5 * time.Minute

// ensureImage makes sure the engine has the public image ref, pulling it if
// the pull policy allows, and returns its ID. The error names the image and
// how to get back to the local build path.
func (e *Engine) ensureImage(ctx context.Context, ref string) (string, error) {
	res, err := e.api.ImageInspect(ctx, ref)
	if err == nil {
		return res.ID, nil
	}
	if !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("localmesh: inspect image %s: %w", ref, err)
	}
	if e.images.pull == PullNever {
		return "", fmt.Errorf("localmesh: %w: %s is not in the container engine and %s=never forbids pulling it; pull it first (docker pull %s) or use the local build path (%s=local)",
			ErrImageUnavailable, ref, EnvPull, ref, EnvImages)
	}
	e.logger.Info("localmesh: pulling public image", "image", ref)
	start := time.Now()
	pctx, cancel := context.WithTimeout(ctx, pullLimit)
	defer cancel()
	resp, err := e.api.ImagePull(pctx, ref, client.ImagePullOptions{})
	if err == nil {
		err = resp.Wait(pctx)
		_ = resp.Close()
	}
	if err == nil {
		res, err = e.api.ImageInspect(ctx, ref) // some engines report a failed pull only here
	}
	if err != nil {
		return "", fmt.Errorf("localmesh: %w: the container engine cannot pull %s: %w; give it registry access (try docker pull %s) or use the local build path (%s=local)",
			ErrImageUnavailable, ref, err, ref, EnvImages)
	}
	e.logger.Info("localmesh: pulled public image", "image", ref, "took", time.Since(start).Round(time.Millisecond))
	return res.ID, nil
}
