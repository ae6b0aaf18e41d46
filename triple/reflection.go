package triple

import (
	"errors"
	"fmt"
	"io"

	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	// The v1alpha descriptor must be in the registry for the v1alpha service
	// this server lists to be resolvable (grpcurl describe resolves every
	// listed service).
	_ "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Server reflection, v1 and v1alpha: the two have the same wire format, so
// one handler serves both names with the v1 message types. Each is listed
// with its own .proto file.
func registerReflection(s *Server) {
	for _, svc := range [...]struct{ name, file string }{
		{"grpc.reflection.v1.ServerReflection", "grpc/reflection/v1/reflection.proto"},
		{"grpc.reflection.v1alpha.ServerReflection", "grpc_reflection_v1alpha/reflection.proto"},
	} {
		desc := &ServiceDesc{
			ServiceName: svc.name,
			Metadata:    svc.file,
			Streams: []StreamDesc{{
				StreamName:    "ServerReflectionInfo",
				ServerStreams: true,
				ClientStreams: true,
				Handler:       func(_ any, stream ServerStream) error { return s.reflect(stream) },
			}},
		}
		_ = s.Register(desc, struct{}{})
	}
}

func (s *Server) reflect(stream ServerStream) error {
	for {
		req := new(rpb.ServerReflectionRequest)
		if err := stream.RecvMsg(req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		resp := &rpb.ServerReflectionResponse{ValidHost: req.GetHost(), OriginalRequest: req}
		switch r := req.GetMessageRequest().(type) {
		case *rpb.ServerReflectionRequest_ListServices:
			var list []*rpb.ServiceResponse
			for _, n := range s.ServiceNames() {
				if describable(n) {
					list = append(list, &rpb.ServiceResponse{Name: n})
				}
			}
			resp.MessageResponse = &rpb.ServerReflectionResponse_ListServicesResponse{ListServicesResponse: &rpb.ListServiceResponse{Service: list}}
		case *rpb.ServerReflectionRequest_FileByFilename:
			fd, err := protoregistry.GlobalFiles.FindFileByPath(r.FileByFilename)
			setFileResponse(resp, fd, err, fmt.Sprintf("file %+q", r.FileByFilename))
		case *rpb.ServerReflectionRequest_FileContainingSymbol:
			d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(r.FileContainingSymbol))
			var fd protoreflect.FileDescriptor
			if err == nil {
				fd = d.ParentFile()
			}
			setFileResponse(resp, fd, err, fmt.Sprintf("symbol %+q", r.FileContainingSymbol))
		case *rpb.ServerReflectionRequest_FileContainingExtension:
			xt, err := protoregistry.GlobalTypes.FindExtensionByNumber(protoreflect.FullName(r.FileContainingExtension.GetContainingType()), protoreflect.FieldNumber(r.FileContainingExtension.GetExtensionNumber()))
			var fd protoreflect.FileDescriptor
			if err == nil {
				fd = xt.TypeDescriptor().ParentFile()
			}
			setFileResponse(resp, fd, err, fmt.Sprintf("extension %d of %+q", r.FileContainingExtension.GetExtensionNumber(), r.FileContainingExtension.GetContainingType()))
		case *rpb.ServerReflectionRequest_AllExtensionNumbersOfType:
			var nums []int32
			protoregistry.GlobalTypes.RangeExtensionsByMessage(protoreflect.FullName(r.AllExtensionNumbersOfType), func(xt protoreflect.ExtensionType) bool {
				nums = append(nums, int32(xt.TypeDescriptor().Number()))
				return true
			})
			resp.MessageResponse = &rpb.ServerReflectionResponse_AllExtensionNumbersResponse{AllExtensionNumbersResponse: &rpb.ExtensionNumberResponse{BaseTypeName: r.AllExtensionNumbersOfType, ExtensionNumber: nums}}
		default:
			resp.MessageResponse = &rpb.ServerReflectionResponse_ErrorResponse{ErrorResponse: &rpb.ErrorResponse{
				ErrorCode: int32(CodeInvalidArgument), ErrorMessage: "unknown reflection request",
			}}
		}
		if err := stream.SendMsg(resp); err != nil {
			return err
		}
	}
}

// describable reports whether reflection can resolve the service's
// descriptor. Services without one (wrapper-mode services of plain Java
// interfaces, which have no .proto) are not listed: a tool that lists, then
// resolves every listed name (grpcurl describe) would fail on them.
func describable(service string) bool {
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return false
	}
	_, ok := d.(protoreflect.ServiceDescriptor)
	return ok
}

// setFileResponse answers with fd and its transitive dependencies, or with
// NOT_FOUND naming what was asked for. The message is our own plain text:
// protobuf's error strings contain a non-breaking space.
func setFileResponse(resp *rpb.ServerReflectionResponse, fd protoreflect.FileDescriptor, err error, what string) {
	if err != nil || fd == nil {
		resp.MessageResponse = &rpb.ServerReflectionResponse_ErrorResponse{ErrorResponse: &rpb.ErrorResponse{
			ErrorCode:    int32(CodeNotFound),
			ErrorMessage: what + " not found: no .proto file registered in this server's binary defines it",
		}}
		return
	}
	var out [][]byte
	seen := map[string]bool{}
	var walk func(f protoreflect.FileDescriptor)
	walk = func(f protoreflect.FileDescriptor) {
		if seen[f.Path()] {
			return
		}
		seen[f.Path()] = true
		if b, err := proto.Marshal(protodesc.ToFileDescriptorProto(f)); err == nil {
			out = append(out, b)
		}
		imps := f.Imports()
		for i := 0; i < imps.Len(); i++ {
			walk(imps.Get(i).FileDescriptor)
		}
	}
	walk(fd)
	resp.MessageResponse = &rpb.ServerReflectionResponse_FileDescriptorResponse{FileDescriptorResponse: &rpb.FileDescriptorResponse{FileDescriptorProto: out}}
}
