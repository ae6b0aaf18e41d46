package command

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/shoalmesh/shoal/triple"
)

func newListCmd(e *env) *cobra.Command {
	f := &connFlags{}
	var output string
	cmd := &cobra.Command{
		Use:   "list <host:port> [package.Service]",
		Short: "List the services of a server, or the methods of one service",
		Long: `List the services a server offers, through its reflection service
(grpc.reflection.v1, falling back to v1alpha) or from --proto files; given a
service, list its methods as full names to pass to 'shoal call'.`,
		Example: `  shoal list 127.0.0.1:50051
  shoal list 127.0.0.1:50051 greet.GreetService
  shoal list --proto api/greet.proto 127.0.0.1:50051 -o json`,
		Args: rangeArgs(1, 2, "<host:port> and an optional service"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			return withSource(cmd.Context(), f, args[0], nil, func(ctx context.Context, _ *triple.ClientConn, src descSource) error {
				var names []string
				if len(args) == 1 {
					var err error
					if names, err = src.services(ctx); err != nil {
						return err
					}
				} else {
					sd, err := findService(ctx, src, args[1])
					if err != nil {
						return err
					}
					for _, m := range methodNames(sd) {
						names = append(names, string(sd.FullName())+"/"+m)
					}
				}
				if names == nil {
					names = []string{}
				}
				return printData(e.stdout, output, names, func(w io.Writer) error {
					for _, n := range names {
						fmt.Fprintln(w, n)
					}
					return nil
				})
			})
		},
	}
	f.add(cmd)
	addOutputFlag(cmd, &output)
	return cmd
}

func newDescribeCmd(e *env) *cobra.Command {
	f := &connFlags{}
	var output string
	cmd := &cobra.Command{
		Use:   "describe <host:port> [symbol]",
		Short: "Describe services, methods, messages and enums of a server",
		Long: `Describe a symbol the server knows through reflection (or --proto files): a
service with its methods, a method (package.Service/Method or
package.Service.Method) with its request and response, a message with its
fields, an enum with its values. Without a symbol, describe every service.
Text output reads like .proto source; -o json|yaml prints the descriptor.`,
		Example: `  shoal describe 127.0.0.1:50051
  shoal describe 127.0.0.1:50051 greet.GreetService/Greet
  shoal describe 127.0.0.1:50051 greet.GreetRequest -o yaml`,
		Args: rangeArgs(1, 2, "<host:port> and an optional symbol"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			return withSource(cmd.Context(), f, args[0], nil, func(ctx context.Context, _ *triple.ClientConn, src descSource) error {
				var ds []protoreflect.Descriptor
				if len(args) == 1 {
					names, err := src.services(ctx)
					if err != nil {
						return err
					}
					for _, n := range names {
						d, err := src.find(ctx, n)
						if err != nil {
							// A server may list a service it has no schema
							// for; describe the others.
							if exitCode(err) != int(triple.CodeNotFound) {
								return err
							}
							fmt.Fprintf(e.stderr, "shoal describe: warning: the server lists %s but sends no schema for it\n", n)
							continue
						}
						ds = append(ds, d)
					}
				} else {
					d, err := findSymbol(ctx, src, args[1])
					if err != nil {
						return err
					}
					ds = append(ds, d)
				}
				return describe(e.stdout, output, ds)
			})
		},
	}
	f.add(cmd)
	addOutputFlag(cmd, &output)
	return cmd
}

// withSource dials target, opens the schema source and runs fn; the
// reflection stream, if any, stays open until fn returns.
func withSource(ctx context.Context, f *connFlags, target string, dialOpts []triple.ClientOption, fn func(context.Context, *triple.ClientConn, descSource) error) error {
	cc, err := dial(target, dialOpts...)
	if err != nil {
		return err
	}
	defer cc.Close() //nolint:errcheck // nothing to do on exit
	ctx, cancel := f.context(ctx)
	defer cancel()
	src, closeSrc, err := f.source(ctx, cc)
	if err != nil {
		return err
	}
	defer closeSrc()
	return fn(ctx, cc, src)
}

func findService(ctx context.Context, src descSource, name string) (protoreflect.ServiceDescriptor, error) {
	d, err := src.find(ctx, name)
	if err != nil {
		return nil, err
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, usageErrorf("%s is a %s, not a service", name, kindOf(d))
	}
	return sd, nil
}

// findSymbol finds a symbol, taking Service/Method for a method too.
func findSymbol(ctx context.Context, src descSource, name string) (protoreflect.Descriptor, error) {
	name = strings.TrimPrefix(name, "/")
	if svc, m, ok := strings.Cut(name, "/"); ok {
		sd, err := findService(ctx, src, svc)
		if err != nil {
			return nil, err
		}
		return findMethod(sd, m)
	}
	d, err := src.find(ctx, name)
	if err == nil {
		return d, nil
	}
	// package.Service.Method: the server may only know the service.
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		if sd, serr := findService(ctx, src, name[:i]); serr == nil {
			if md := sd.Methods().ByName(protoreflect.Name(name[i+1:])); md != nil {
				return md, nil
			}
		}
	}
	return nil, err
}

// findMethod returns the method of sd, or NOT_FOUND naming the methods.
func findMethod(sd protoreflect.ServiceDescriptor, name string) (protoreflect.MethodDescriptor, error) {
	md := sd.Methods().ByName(protoreflect.Name(name))
	if md == nil {
		return nil, notFoundf("service %s has no method %q; it has: %s", sd.FullName(), name, strings.Join(methodNames(sd), ", "))
	}
	return md, nil
}

func kindOf(d protoreflect.Descriptor) string {
	switch d.(type) {
	case protoreflect.ServiceDescriptor:
		return "service"
	case protoreflect.MethodDescriptor:
		return "method"
	case protoreflect.MessageDescriptor:
		return "message"
	case protoreflect.EnumDescriptor:
		return "enum"
	case protoreflect.FieldDescriptor:
		return "field"
	case protoreflect.EnumValueDescriptor:
		return "enum value"
	case protoreflect.FileDescriptor:
		return "file"
	}
	return "symbol"
}

// describe prints descriptors as .proto-like text or as descriptor JSON/YAML.
func describe(w io.Writer, format string, ds []protoreflect.Descriptor) error {
	if format == formatText {
		for i, d := range ds {
			if i > 0 {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "%s is a %s:\n", d.FullName(), kindOf(d))
			writeProto(w, d, "")
		}
		return nil
	}
	var items []string
	for _, d := range ds {
		m := descriptorProto(d)
		if m == nil {
			return usageErrorf("%s is a %s: only services, methods, messages and enums print as %s", d.FullName(), kindOf(d), format)
		}
		b, err := protojson.Marshal(m)
		if err != nil {
			return err
		}
		items = append(items, fmt.Sprintf(`{"name":%q,"kind":%q,"descriptor":%s}`, d.FullName(), kindOf(d), b))
	}
	doc := []byte("[" + strings.Join(items, ",") + "]")
	if format == formatJSON {
		var buf bytes.Buffer
		if err := json.Indent(&buf, doc, "", "  "); err != nil {
			return err
		}
		doc = buf.Bytes()
	}
	return writeJSONAs(w, format, doc)
}

func descriptorProto(d protoreflect.Descriptor) proto.Message {
	switch d := d.(type) {
	case protoreflect.ServiceDescriptor:
		return protodesc.ToServiceDescriptorProto(d)
	case protoreflect.MethodDescriptor:
		return protodesc.ToMethodDescriptorProto(d)
	case protoreflect.MessageDescriptor:
		return protodesc.ToDescriptorProto(d)
	case protoreflect.EnumDescriptor:
		return protodesc.ToEnumDescriptorProto(d)
	}
	return nil
}

func writeProto(w io.Writer, d protoreflect.Descriptor, indent string) {
	switch d := d.(type) {
	case protoreflect.ServiceDescriptor:
		fmt.Fprintf(w, "%sservice %s {\n", indent, d.Name())
		ms := d.Methods()
		for i := range ms.Len() {
			writeProto(w, ms.Get(i), indent+"  ")
		}
		fmt.Fprintf(w, "%s}\n", indent)
	case protoreflect.MethodDescriptor:
		fmt.Fprintf(w, "%srpc %s(%s.%s) returns (%s.%s);\n", indent, d.Name(),
			streamWord(d.IsStreamingClient()), d.Input().FullName(), streamWord(d.IsStreamingServer()), d.Output().FullName())
	case protoreflect.MessageDescriptor:
		fmt.Fprintf(w, "%smessage %s {\n", indent, d.Name())
		fs := d.Fields()
		for i := range fs.Len() {
			writeProto(w, fs.Get(i), indent+"  ")
		}
		fmt.Fprintf(w, "%s}\n", indent)
	case protoreflect.FieldDescriptor:
		label := ""
		switch {
		case d.IsMap():
			fmt.Fprintf(w, "%smap<%s, %s> %s = %d;\n", indent, fieldType(d.MapKey()), fieldType(d.MapValue()), d.Name(), d.Number())
			return
		case d.IsList():
			label = "repeated "
		case d.HasPresence() && d.ContainingOneof() != nil && d.ContainingOneof().IsSynthetic():
			label = "optional "
		}
		fmt.Fprintf(w, "%s%s%s %s = %d;\n", indent, label, fieldType(d), d.Name(), d.Number())
	case protoreflect.EnumDescriptor:
		fmt.Fprintf(w, "%senum %s {\n", indent, d.Name())
		vs := d.Values()
		for i := range vs.Len() {
			fmt.Fprintf(w, "%s  %s = %d;\n", indent, vs.Get(i).Name(), vs.Get(i).Number())
		}
		fmt.Fprintf(w, "%s}\n", indent)
	default:
		fmt.Fprintf(w, "%s%s\n", indent, d.FullName())
	}
}

func streamWord(s bool) string {
	if s {
		return "stream "
	}
	return ""
}

func fieldType(f protoreflect.FieldDescriptor) string {
	switch f.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return "." + string(f.Message().FullName())
	case protoreflect.EnumKind:
		return "." + string(f.Enum().FullName())
	}
	return f.Kind().String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
