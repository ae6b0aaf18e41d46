package triple_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	rpbalpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/internal/testpb/testpbtriple"
)

// reflectFunc sends one reflection request on an open stream and returns
// its answer. Both protocol versions are driven through it with v1 messages:
// v1 and v1alpha share one wire format.
type reflectFunc func(*rpb.ServerReflectionRequest) *rpb.ServerReflectionResponse

// reflectStream is an open ServerReflectionInfo stream of either version.
type reflectStream[Req, Resp proto.Message] interface {
	Send(Req) error
	Recv() (Resp, error)
	CloseSend() error
}

// reflectOn sends v1 requests on st, converted to its version, and returns
// the answers as v1 messages.
func reflectOn[Req, Resp proto.Message](t *testing.T, st reflectStream[Req, Resp], newReq func() Req) reflectFunc {
	t.Cleanup(func() { _ = st.CloseSend() })
	return func(req *rpb.ServerReflectionRequest) *rpb.ServerReflectionResponse {
		t.Helper()
		r := newReq()
		convert(t, req, r)
		if err := st.Send(r); err != nil {
			t.Fatal(err)
		}
		got, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		resp := new(rpb.ServerReflectionResponse)
		convert(t, got, resp)
		return resp
	}
}

func reflectV1(ctx context.Context, t *testing.T, addr string) reflectFunc {
	st, err := rpb.NewServerReflectionClient(grpcConn(t, addr)).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return reflectOn[*rpb.ServerReflectionRequest, *rpb.ServerReflectionResponse](t, st, func() *rpb.ServerReflectionRequest { return new(rpb.ServerReflectionRequest) })
}

func reflectV1Alpha(ctx context.Context, t *testing.T, addr string) reflectFunc {
	st, err := rpbalpha.NewServerReflectionClient(grpcConn(t, addr)).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return reflectOn[*rpbalpha.ServerReflectionRequest, *rpbalpha.ServerReflectionResponse](t, st, func() *rpbalpha.ServerReflectionRequest { return new(rpbalpha.ServerReflectionRequest) })
}

// convert copies a message into its twin of the other reflection version.
func convert(t *testing.T, from, to proto.Message) {
	t.Helper()
	b, err := proto.Marshal(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(b, to); err != nil {
		t.Fatal(err)
	}
}

// wrapperLikeDesc is a service with no .proto behind it, as wrapper-mode
// (hessian2) services of plain Java interfaces are.
var wrapperLikeDesc = triple.ServiceDesc{
	ServiceName: "org.example.GreetingService",
	Methods: []triple.MethodDesc{{MethodName: "greet", Handler: func(any, context.Context, func(any) error, triple.UnaryServerInterceptor) (any, error) {
		return nil, triple.Errorf(triple.CodeUnimplemented, "not called in this test")
	}}},
}

// TestReflectionResolvesEveryListedService does what grpcurl describe does
// with no arguments, through grpc-go's reflection stubs of both versions:
// list the services, then resolve each one's file descriptor (with its
// dependencies) into a service descriptor.
func TestReflectionResolvesEveryListedService(t *testing.T) {
	var srv *triple.Server
	addr := startServer(t, nil, func(s *triple.Server) {
		srv = s
		if err := testpbtriple.RegisterEchoServiceHandler(s, &echo{name: "default"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Register(&wrapperLikeDesc, struct{}{}); err != nil {
			t.Fatal(err)
		}
	})
	if !slices.Contains(srv.ServiceNames(), wrapperLikeDesc.ServiceName) {
		t.Fatalf("ServiceNames %v lacks %s", srv.ServiceNames(), wrapperLikeDesc.ServiceName)
	}
	for _, v := range []struct {
		name string
		open func(context.Context, *testing.T, string) reflectFunc
	}{{"v1", reflectV1}, {"v1alpha", reflectV1Alpha}} {
		t.Run(v.name, func(t *testing.T) {
			call := v.open(ctxT(t), t, addr)
			resp := call(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{}})
			var names []string
			for _, s := range resp.GetListServicesResponse().GetService() {
				names = append(names, s.GetName())
			}
			for _, want := range []string{
				"shoal.triple.test.EchoService", "grpc.health.v1.Health",
				"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection",
			} {
				if !slices.Contains(names, want) {
					t.Errorf("list services %v lacks %s", names, want)
				}
			}
			if slices.Contains(names, wrapperLikeDesc.ServiceName) {
				t.Errorf("list services %v shows %s, which has no descriptor to resolve", names, wrapperLikeDesc.ServiceName)
			}
			for _, name := range names {
				resp := call(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: name}})
				if e := resp.GetErrorResponse(); e != nil {
					t.Errorf("resolve %s: code %d: %s", name, e.GetErrorCode(), e.GetErrorMessage())
					continue
				}
				set := new(descriptorpb.FileDescriptorSet)
				for _, b := range resp.GetFileDescriptorResponse().GetFileDescriptorProto() {
					fdp := new(descriptorpb.FileDescriptorProto)
					if err := proto.Unmarshal(b, fdp); err != nil {
						t.Fatalf("resolve %s: %v", name, err)
					}
					set.File = append(set.File, fdp)
				}
				files, err := protodesc.NewFiles(set)
				if err != nil {
					t.Errorf("resolve %s: the files and dependencies sent do not build: %v", name, err)
					continue
				}
				d, err := files.FindDescriptorByName(protoreflect.FullName(name))
				if _, ok := d.(protoreflect.ServiceDescriptor); err != nil || !ok {
					t.Errorf("resolve %s: got %v, %v; want a service descriptor", name, d, err)
				}
			}
		})
	}
}

// TestReflectionErrorsArePlainText checks that reflection's not-found
// answers are ASCII text naming what was asked for (protobuf's own error
// strings contain a non-breaking space).
func TestReflectionErrorsArePlainText(t *testing.T) {
	call := reflectV1(ctxT(t), t, startServer(t, nil, nil))
	for _, tc := range []struct {
		req  *rpb.ServerReflectionRequest
		want string
	}{
		{&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "no.such.Service"}}, `"no.such.Service"`},
		{&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileByFilename{FileByFilename: "no/such.proto"}}, `"no/such.proto"`},
		{&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingExtension{FileContainingExtension: &rpb.ExtensionRequest{
			ContainingType: "shoal.triple.test.EchoRequest", ExtensionNumber: 999,
		}}}, `extension 999 of "shoal.triple.test.EchoRequest"`},
	} {
		e := call(tc.req).GetErrorResponse()
		if e == nil {
			t.Errorf("%v: no error response", tc.req)
			continue
		}
		if codes.Code(e.GetErrorCode()) != codes.NotFound {
			t.Errorf("%v: code %d, want NOT_FOUND", tc.req, e.GetErrorCode())
		}
		msg := e.GetErrorMessage()
		for i := 0; i < len(msg); i++ {
			if msg[i] < 0x20 || msg[i] > 0x7e {
				t.Errorf("%v: message %q has byte %#x at %d, want printable ASCII", tc.req, msg, msg[i], i)
				break
			}
		}
		if !strings.Contains(msg, tc.want) {
			t.Errorf("%v: message %q does not name %s", tc.req, msg, tc.want)
		}
	}
}
