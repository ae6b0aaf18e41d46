package command

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoalmesh/shoal/triple"
)

// connFlags are the flags of the commands that talk to a server.
type connFlags struct {
	protos      []string
	importPaths []string
	timeout     time.Duration
	headers     []string
}

func (f *connFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringSliceVar(&f.protos, "proto", nil, "take the schema from these .proto files instead of server reflection")
	cmd.Flags().StringSliceVarP(&f.importPaths, "import-path", "I", nil, "directories to look for --proto files and their imports in (default .)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", 10*time.Second, "bound on the whole command, reflection included; 0 for none")
	cmd.Flags().StringArrayVarP(&f.headers, "header", "H", nil, "a request header (attachment) as 'name: value'; repeatable")
}

// metadata parses the -H flags.
func (f *connFlags) metadata() (triple.Metadata, error) {
	md := triple.Metadata{}
	for _, h := range f.headers {
		k, v, ok := strings.Cut(h, ":")
		k = strings.ToLower(strings.TrimSpace(k))
		if !ok || k == "" {
			return nil, usageErrorf("bad header %q: want 'name: value'", h)
		}
		md.Append(k, strings.TrimSpace(v))
	}
	return md, nil
}

func (f *connFlags) context(ctx context.Context) (context.Context, context.CancelFunc) {
	if f.timeout > 0 {
		return context.WithTimeout(ctx, f.timeout)
	}
	return context.WithCancel(ctx)
}

// dial connects to target ("host:port" or a tri://, http:// or https:// URL).
func dial(target string, opts ...triple.ClientOption) (*triple.ClientConn, error) {
	if strings.HasPrefix(target, "xds:") {
		return nil, usageErrorf("%s is a mesh target: give an endpoint's host:port here ('shoal show %s' lists them); 'shoal call' takes mesh targets", target, target)
	}
	cc, err := triple.Dial(target, opts...)
	if err != nil {
		return nil, usageErrorf("%w", err)
	}
	return cc, nil
}

// source returns the schema source the flags ask for.
func (f *connFlags) source(ctx context.Context, cc *triple.ClientConn) (descSource, func(), error) {
	if len(f.protos) > 0 {
		s, err := newProtoFileSource(ctx, f.protos, f.importPaths)
		if err != nil {
			return nil, nil, err
		}
		return s, func() {}, nil
	}
	s := newReflectionSource(cc)
	return s, s.close, nil
}

// splitMethod accepts Service/Method, /Service/Method and Service.Method.
func splitMethod(s string) (svc, method string, err error) {
	s = strings.TrimPrefix(s, "/")
	if i := strings.LastIndexByte(s, '/'); i > 0 {
		svc, method = s[:i], s[i+1:]
	} else if i := strings.LastIndexByte(s, '.'); i > 0 {
		svc, method = s[:i], s[i+1:]
	}
	if svc == "" || method == "" {
		return "", "", usageErrorf("bad method %q: want <package.Service>/<Method>", s)
	}
	return svc, method, nil
}

func notFoundf(format string, args ...any) error {
	return &exitError{code: int(triple.CodeNotFound), err: fmt.Errorf(format, args...)}
}
