package triple

import (
	"errors"
	"io"

	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Server reflection, v1 and v1alpha: the two have the same wire format, so
// one handler serves both names with the v1 message types.
func registerReflection(s *Server) {
	for _, name := range []string{"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"} {
		desc := &ServiceDesc{
			ServiceName: name,
			Metadata:    "grpc/reflection/v1/reflection.proto",
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
				list = append(list, &rpb.ServiceResponse{Name: n})
			}
			resp.MessageResponse = &rpb.ServerReflectionResponse_ListServicesResponse{ListServicesResponse: &rpb.ListServiceResponse{Service: list}}
		case *rpb.ServerReflectionRequest_FileByFilename:
			fd, err := protoregistry.GlobalFiles.FindFileByPath(r.FileByFilename)
			setFileResponse(resp, fd, err)
		case *rpb.ServerReflectionRequest_FileContainingSymbol:
			d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(r.FileContainingSymbol))
			var fd protoreflect.FileDescriptor
			if err == nil {
				fd = d.ParentFile()
			}
			setFileResponse(resp, fd, err)
		case *rpb.ServerReflectionRequest_FileContainingExtension:
			xt, err := protoregistry.GlobalTypes.FindExtensionByNumber(protoreflect.FullName(r.FileContainingExtension.GetContainingType()), protoreflect.FieldNumber(r.FileContainingExtension.GetExtensionNumber()))
			var fd protoreflect.FileDescriptor
			if err == nil {
				fd = xt.TypeDescriptor().ParentFile()
			}
			setFileResponse(resp, fd, err)
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

// setFileResponse answers with fd and its transitive dependencies, or with
// NOT_FOUND.
func setFileResponse(resp *rpb.ServerReflectionResponse, fd protoreflect.FileDescriptor, err error) {
	if err != nil || fd == nil {
		msg := "not found"
		if err != nil {
			msg = err.Error()
		}
		resp.MessageResponse = &rpb.ServerReflectionResponse_ErrorResponse{ErrorResponse: &rpb.ErrorResponse{
			ErrorCode: int32(CodeNotFound), ErrorMessage: msg,
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
