package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/bufbuild/protocompile"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/shoalmesh/shoal/triple"
)

// descSource finds the schema of services: from the server's reflection
// service or from .proto files.
type descSource interface {
	// services lists the full names of the services.
	services(ctx context.Context) ([]string, error)
	// find returns the descriptor of a fully qualified symbol.
	find(ctx context.Context, name string) (protoreflect.Descriptor, error)
	// files returns every file seen so far, for resolving Any and extensions.
	files() *protoregistry.Files
}

// protoFileSource compiles .proto files in process.
type protoFileSource struct {
	reg *protoregistry.Files
}

func newProtoFileSource(ctx context.Context, paths, importPaths []string) (*protoFileSource, error) {
	if len(importPaths) == 0 {
		importPaths = []string{"."}
	}
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: importPaths}),
	}
	fds, err := c.Compile(ctx, paths...)
	if err != nil {
		return nil, dataErrorf("compile %s: %w (set import directories with -I)", strings.Join(paths, ", "), err)
	}
	reg := new(protoregistry.Files)
	var add func(fd protoreflect.FileDescriptor) error
	add = func(fd protoreflect.FileDescriptor) error {
		if _, err := reg.FindFileByPath(fd.Path()); err == nil {
			return nil
		}
		imps := fd.Imports()
		for i := range imps.Len() {
			if err := add(imps.Get(i).FileDescriptor); err != nil {
				return err
			}
		}
		return reg.RegisterFile(fd)
	}
	for _, fd := range fds {
		if err := add(fd); err != nil {
			return nil, err
		}
	}
	return &protoFileSource{reg: reg}, nil
}

func (s *protoFileSource) services(context.Context) ([]string, error) {
	var out []string
	s.reg.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		svcs := fd.Services()
		for i := range svcs.Len() {
			out = append(out, string(svcs.Get(i).FullName()))
		}
		return true
	})
	sort.Strings(out)
	return out, nil
}

func (s *protoFileSource) find(_ context.Context, name string) (protoreflect.Descriptor, error) {
	d, err := s.reg.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		return nil, &exitError{code: int(triple.CodeNotFound), err: fmt.Errorf("symbol %q is not in the given .proto files", name)}
	}
	return d, nil
}

func (s *protoFileSource) files() *protoregistry.Files { return s.reg }

// Reflection service names, newest first.
var reflectionMethods = []string{
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
}

// reflectionSource asks the server's reflection service (v1, falling back
// to v1alpha: both have the same messages) over one stream.
type reflectionSource struct {
	cc     *triple.ClientConn
	stream triple.ClientStream
	cancel context.CancelFunc
	protos map[string]*descriptorpb.FileDescriptorProto
	reg    *protoregistry.Files
}

func newReflectionSource(cc *triple.ClientConn) *reflectionSource {
	return &reflectionSource{cc: cc, protos: map[string]*descriptorpb.FileDescriptorProto{}, reg: new(protoregistry.Files)}
}

func (s *reflectionSource) close() {
	if s.stream != nil {
		_ = s.stream.CloseSend()
		s.cancel()
	}
}

// ask sends one request and returns the answer, opening the stream (and
// falling back to v1alpha) on first use.
func (s *reflectionSource) ask(ctx context.Context, req *rpb.ServerReflectionRequest) (*rpb.ServerReflectionResponse, error) {
	if s.stream != nil {
		return s.roundTrip(req)
	}
	var firstErr error
	for _, m := range reflectionMethods {
		sctx, cancel := context.WithCancel(ctx)
		st, err := s.cc.NewStream(sctx, &triple.StreamDesc{StreamName: "ServerReflectionInfo", ClientStreams: true, ServerStreams: true}, m)
		if err == nil {
			s.stream, s.cancel = st, cancel
			var resp *rpb.ServerReflectionResponse
			if resp, err = s.roundTrip(req); err == nil {
				return resp, nil
			}
			s.stream = nil
		}
		cancel()
		if firstErr == nil {
			firstErr = err
		}
		if triple.CodeOf(err) != triple.CodeUnimplemented {
			break
		}
	}
	if triple.CodeOf(firstErr) == triple.CodeUnimplemented {
		return nil, &exitError{code: int(triple.CodeUnimplemented), err: fmt.Errorf("%s serves no reflection (grpc.reflection.v1 or v1alpha): pass the service's .proto files with --proto", s.cc.Target())}
	}
	return nil, fmt.Errorf("reflection at %s: %w", s.cc.Target(), firstErr)
}

func (s *reflectionSource) roundTrip(req *rpb.ServerReflectionRequest) (*rpb.ServerReflectionResponse, error) {
	if err := s.stream.SendMsg(req); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	resp := new(rpb.ServerReflectionResponse)
	if err := s.stream.RecvMsg(resp); err != nil {
		if errors.Is(err, io.EOF) {
			err = triple.Errorf(triple.CodeUnavailable, "the reflection stream ended early")
		}
		return nil, err
	}
	return resp, nil
}

func (s *reflectionSource) services(ctx context.Context) ([]string, error) {
	resp, err := s.ask(ctx, &rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{ListServices: "*"}})
	if err != nil {
		return nil, err
	}
	if e := resp.GetErrorResponse(); e != nil {
		return nil, triple.NewError(triple.Code(e.GetErrorCode()), e.GetErrorMessage())
	}
	var out []string
	for _, svc := range resp.GetListServicesResponse().GetService() {
		out = append(out, svc.GetName())
	}
	sort.Strings(out)
	return out, nil
}

func (s *reflectionSource) find(ctx context.Context, name string) (protoreflect.Descriptor, error) {
	if d, err := s.reg.FindDescriptorByName(protoreflect.FullName(name)); err == nil {
		return d, nil
	}
	resp, err := s.ask(ctx, &rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: name}})
	if err != nil {
		return nil, err
	}
	if err := s.addFiles(ctx, resp); err != nil {
		return nil, fmt.Errorf("symbol %q: %w", name, err)
	}
	d, err := s.reg.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		return nil, &exitError{code: int(triple.CodeNotFound), err: fmt.Errorf("symbol %q is not in the file the server sent for it", name)}
	}
	return d, nil
}

// addFiles registers the files of a reflection answer, asking for the
// imports it lacks.
func (s *reflectionSource) addFiles(ctx context.Context, resp *rpb.ServerReflectionResponse) error {
	if e := resp.GetErrorResponse(); e != nil {
		code := triple.Code(e.GetErrorCode())
		if code == triple.CodeNotFound {
			return &exitError{code: int(code), err: fmt.Errorf("the server does not know it (%s); run 'shoal list %s' for its services", e.GetErrorMessage(), s.cc.Target())}
		}
		return triple.NewError(code, e.GetErrorMessage())
	}
	var names []string
	for _, b := range resp.GetFileDescriptorResponse().GetFileDescriptorProto() {
		fdp := new(descriptorpb.FileDescriptorProto)
		if err := proto.Unmarshal(b, fdp); err != nil {
			return fmt.Errorf("the server sent a bad file descriptor: %w", err)
		}
		if _, ok := s.protos[fdp.GetName()]; !ok {
			s.protos[fdp.GetName()] = fdp
			names = append(names, fdp.GetName())
		}
	}
	for _, n := range names {
		if err := s.register(ctx, n, 0); err != nil {
			return err
		}
	}
	return nil
}

// register turns the file name into a descriptor once its imports are in.
func (s *reflectionSource) register(ctx context.Context, name string, depth int) error {
	if _, err := s.reg.FindFileByPath(name); err == nil {
		return nil
	}
	if depth > 100 {
		return fmt.Errorf("imports of %s nest too deep", name)
	}
	fdp, ok := s.protos[name]
	if !ok {
		resp, err := s.ask(ctx, &rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileByFilename{FileByFilename: name}})
		if err == nil && resp.GetErrorResponse() == nil {
			err = s.addFiles(ctx, resp)
		}
		if fdp, ok = s.protos[name]; !ok {
			// The well-known types are compiled into shoal.
			fd, gerr := protoregistry.GlobalFiles.FindFileByPath(name)
			if gerr != nil {
				if err == nil {
					err = errors.New("not sent")
				}
				return fmt.Errorf("the server cannot send the imported file %s: %w", name, err)
			}
			fdp = protodesc.ToFileDescriptorProto(fd)
			s.protos[name] = fdp
		}
	}
	for _, dep := range fdp.GetDependency() {
		if err := s.register(ctx, dep, depth+1); err != nil {
			return err
		}
	}
	if _, err := s.reg.FindFileByPath(name); err == nil {
		return nil // registered on the way
	}
	fd, err := protodesc.NewFile(fdp, s.reg)
	if err != nil {
		return fmt.Errorf("the server sent an invalid file %s: %w", name, err)
	}
	return s.reg.RegisterFile(fd)
}

func (s *reflectionSource) files() *protoregistry.Files { return s.reg }
