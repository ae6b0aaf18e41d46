package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/shoalmesh/shoal/sdk/call"
	"github.com/shoalmesh/shoal/sdk/tri"
	"github.com/shoalmesh/shoal/triple"
)

type callFlags struct {
	connFlags
	data           string
	dataSet        bool
	protocol       string
	group, version string
	verbose        bool
	output         string
	xds            string
	hessian        bool
	args           []string
	count          int
}

func newCallCmd(e *env) *cobra.Command {
	f := &callFlags{}
	cmd := &cobra.Command{
		Use:   "call <target> <package.Service>/<Method>",
		Short: "Call a method of a Triple or gRPC service with a JSON request",
		Long: `Call a method of a Triple or gRPC service. The request is JSON (protobuf's
JSON mapping) from -d, or from standard input when -d is not given. The schema
comes from the server's reflection service (grpc.reflection.v1, falling back to
v1alpha), or from .proto files given with --proto.

Streaming methods read a sequence of JSON requests (one per line, say) from -d
or standard input and print one JSON response per line as each arrives.

The target is host:port (plain HTTP/2), an https:// URL for TLS, or a
service of the mesh: a dotted interface name (greet.GreetService, mapped to its
host by the ServiceEntry convention, with --group) or xds:///host:port.
For a mesh target shoal asks istiod, as a Shoal consumer does (registry-istio,
and router-mesh for the routes: matches, weighted subsets, timeouts,
retries, faults), and calls the endpoint the routes pick; the schema comes
from reflection on the first endpoint that serves it, or --proto. istiod's
address is --xds, else SHOAL_XDS_ADDRESS, else the control plane 'shoal dev
up' runs, else a gRPC xDS bootstrap file (GRPC_XDS_BOOTSTRAP). For an
interface target the method may be given alone (Greet).

With --hessian the method belongs to a plain Java interface (Dubbo's wrapper
mode: no .proto, each argument encoded with hessian2): the arguments are -a
TYPE:JSON in order, where TYPE is the Java parameter type the method declares
(java.lang.String or String, int, long, boolean, double, java.util.Map,
java.util.List, or a class given as a JSON object of its fields). The result
prints as JSON; a Java exception exits with 2 (UNKNOWN) and its class and
message.

With -n N a unary method is called N times, one call after the other with
the same request, and instead of the responses shoal prints how many calls
ended with each status and which endpoint answered how many, summed by the
endpoint's version label (-o json|yaml for a document). For a mesh target
every call is routed anew, as each call of a Shoal consumer is: the route,
the weighted destination and the endpoint are picked per call, so the counts
show the split the routes make. --timeout bounds all N calls together; the
exit code is the status code of the first call that failed.

The response goes to standard output; with -v the response headers, trailers,
status and, for a mesh target, the endpoint that answered go to standard
error. The exit code is the call's gRPC status code
(0 OK, 1 CANCELLED ... 14 UNAVAILABLE ... 16 UNAUTHENTICATED); 64 for a wrong
command line and 65 for a request that is not valid JSON for the method.`,
		Example: `  # Unary call, schema from server reflection
  shoal call 127.0.0.1:50051 greet.GreetService/Greet -d '{"name":"Ada"}'

  # Request from stdin, a provider exported under a group and version
  echo '{"name":"Ada"}' | shoal call 127.0.0.1:50051 greet.GreetService/Greet --group g1 --version 2.0.0

  # Attachments, headers and trailers, schema from local files
  shoal call 127.0.0.1:50051 greet.GreetService/Greet --proto api/greet.proto -H 'x-user: ada' -v -d '{}'

  # Bidirectional stream: one request per line in, one response per line out
  printf '{"name":"a"}\n{"name":"b"}\n' | shoal call 127.0.0.1:50051 greet.GreetService/GreetBidiStream

  # Dubbo-go's triple flavour, or HTTP/1.1 JSON like curl
  shoal call 127.0.0.1:50051 greet.GreetService/Greet --protocol triple -d '{"name":"Ada"}'
  shoal call 127.0.0.1:50051 greet.GreetService/Greet --protocol http -d '{"name":"Ada"}'

  # A plain Java interface method: typed arguments, hessian2 on the wire
  shoal call 127.0.0.1:20000 org.example.GreetingService/greet --hessian -a 'java.lang.String:"Ada"'
  shoal call 127.0.0.1:20000 org.example.Calc/add --hessian -a 'int:3' -a 'long:4'
  shoal call 127.0.0.1:20000 org.example.GreetingService/describe --hessian -a 'org.example.Person:{"name":"Ada","age":36}'

  # Through the mesh: istiod's routes pick the endpoint; -v names it
  shoal call greet.GreetService Greet -d '{"name":"Ada"}' -v
  shoal call xds:///greeter.default.svc.cluster.local:20000 greet.GreetService/Greet --xds 127.0.0.1:15010 -d '{}'

  # 200 calls, each routed anew: how many each endpoint and version answered
  shoal call greet.GreetService Greet -d '{"name":"Ada"}' -n 200`,
		Args: exactArgs(2, "<target> and <package.Service>/<Method>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.dataSet = cmd.Flags().Changed("data")
			return runCall(cmd.Context(), e, f, args[0], args[1])
		},
	}
	f.add(cmd)
	cmd.Flags().StringVarP(&f.data, "data", "d", "", "the request as JSON (a sequence of JSON values for a client stream); default: read standard input")
	cmd.Flags().StringVar(&f.protocol, "protocol", "grpc", "wire protocol: grpc (gRPC over HTTP/2, what Dubbo Java, dubbo-go and grpc-go serve), triple (dubbo-go's triple flavour, unary only) or http (HTTP/1.1 JSON, unary only)")
	cmd.Flags().StringVar(&f.group, "group", "", "call the service exported under this group (tri-service-group)")
	cmd.Flags().StringVar(&f.version, "version", "", "call the service exported under this version (tri-service-version)")
	cmd.Flags().BoolVarP(&f.verbose, "verbose", "v", false, "print response headers, trailers, status and the endpoint that answered to standard error")
	cmd.Flags().BoolVar(&f.hessian, "hessian", false, "call a method of a plain Java interface (Dubbo's wrapper mode, hessian2) with the -a arguments")
	cmd.Flags().StringArrayVarP(&f.args, "arg", "a", nil, "with --hessian: an argument as TYPE:JSON (java.lang.String:\"Ada\", int:3, a class name with a JSON object of its fields); repeatable, in order")
	cmd.Flags().StringVar(&f.xds, "xds", "", "istiod's xDS address host:port, for a mesh target (default $SHOAL_XDS_ADDRESS, else 'shoal dev up''s)")
	cmd.Flags().IntVarP(&f.count, "count", "n", 1, "make this many calls of a unary method, one after the other, each routed anew, and print how many each endpoint and version answered, and with which status, instead of the responses")
	addOutputFlag(cmd, &f.output)
	return cmd
}

func runCall(ctx context.Context, e *env, f *callFlags, target, method string) error {
	if err := checkFormat(f.output); err != nil {
		return err
	}
	if f.count < 1 {
		return usageErrorf("bad -n %d: make at least one call", f.count)
	}
	var wire triple.Protocol
	switch f.protocol {
	case "grpc":
		wire = triple.ProtocolGRPC
	case "triple":
		wire = triple.ProtocolTriple
	case "http":
	default:
		return usageErrorf("unknown protocol %q: use grpc, triple or http", f.protocol)
	}
	if f.hessian {
		return runHessianCall(ctx, e, f, wire, target, method)
	}
	if isMeshTarget(target) {
		return runMeshCall(ctx, e, f, wire, target, method)
	}
	svcName, methodName, md, err := f.parseCall(target, method)
	if err != nil {
		return err
	}
	return withSource(ctx, &f.connFlags, target, []triple.ClientOption{triple.WithProtocol(wire)}, func(ctx context.Context, cc *triple.ClientConn, src descSource) error {
		sd, err := findService(ctx, src, svcName)
		if err != nil {
			return err
		}
		return callMethod(ctx, e, f, cc, src, sd, methodName, target, md, nil)
	})
}

// callMethod calls one method of sd, found in src. ep, when not nil, says
// which endpoint answered (for -v).
func callMethod(ctx context.Context, e *env, f *callFlags, cc triple.Invoker, src descSource, sd protoreflect.ServiceDescriptor, methodName, target string, md triple.Metadata, ep *answeredBy) error {
	mdesc, err := findMethod(sd, methodName)
	if err != nil {
		return err
	}
	c := &caller{
		e: e, f: f, md: mdesc, types: dynamicpb.NewTypes(src.files()), endpoint: ep,
		path: "/" + string(sd.FullName()) + "/" + string(mdesc.Name()),
	}
	in, err := c.requests()
	if err != nil {
		return err
	}
	unary := !mdesc.IsStreamingClient() && !mdesc.IsStreamingServer()
	switch {
	case f.count > 1 && !unary:
		return usageErrorf("-n repeats unary calls; %s is a streaming method: call it without -n", c.path)
	case f.count > 1 && f.protocol == "http":
		return usageErrorf("-n repeats calls over --protocol grpc or triple, not http")
	}
	if f.protocol == "http" {
		if mdesc.IsStreamingClient() || mdesc.IsStreamingServer() {
			return usageErrorf("%s is a streaming method: call it with --protocol grpc", c.path)
		}
		return c.http(ctx, target, md, in)
	}
	ctx = triple.NewOutgoingContext(ctx, md)
	opts := []triple.CallOption{}
	if f.group != "" {
		opts = append(opts, triple.WithGroup(f.group))
	}
	if f.version != "" {
		opts = append(opts, triple.WithVersion(f.version))
	}
	switch {
	case unary && f.count > 1:
		return c.repeat(ctx, cc, target, in[0], opts)
	case unary:
		return c.unary(ctx, cc, in, opts)
	}
	return c.stream(ctx, cc, in, opts)
}

// caller makes one call of a method known by its descriptor.
type caller struct {
	e     *env
	f     *callFlags
	md    protoreflect.MethodDescriptor
	types *dynamicpb.Types
	path  string
	// endpoint records the endpoint a routed call went to (nil for a
	// call to host:port).
	endpoint *answeredBy
}

// requests decodes the request messages: exactly one for a unary or server
// streaming method, any number for a client stream.
func (c *caller) requests() ([]proto.Message, error) {
	r := c.e.stdin
	if c.f.dataSet {
		r = strings.NewReader(c.f.data)
	}
	if r == nil {
		r = strings.NewReader("")
	}
	dec := json.NewDecoder(r)
	var out []proto.Message
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, dataErrorf("request %d is not JSON: %w", len(out)+1, err)
		}
		m := dynamicpb.NewMessage(c.md.Input())
		if err := (protojson.UnmarshalOptions{Resolver: c.types}).Unmarshal(raw, m); err != nil {
			return nil, dataErrorf("request %d is not a valid %s: %w", len(out)+1, c.md.Input().FullName(), err)
		}
		out = append(out, m)
	}
	if !c.md.IsStreamingClient() {
		switch len(out) {
		case 0: // no input: the empty message
			out = append(out, dynamicpb.NewMessage(c.md.Input()))
		case 1:
		default:
			return nil, dataErrorf("%s takes one request, got %d JSON values", c.path, len(out))
		}
	}
	return out, nil
}

func (c *caller) unary(ctx context.Context, cc triple.Invoker, in []proto.Message, opts []triple.CallOption) error {
	var hdr, trl triple.Metadata
	out := dynamicpb.NewMessage(c.md.Output())
	if c.endpoint == nil {
		opts = append(opts, triple.Header(&hdr), triple.Trailer(&trl))
	} else { // a routed call takes no per-call options: the reference fills them from ctx
		ctx = tri.WithResponseMetadata(ctx, &hdr, &trl)
	}
	err := cc.Invoke(ctx, c.path, in[0], out, opts...)
	c.verbose("headers", hdr)
	if err == nil {
		err = c.print(out, true)
	}
	c.verbose("trailers", trl)
	c.status(err)
	return err
}

func (c *caller) stream(ctx context.Context, cc triple.Invoker, in []proto.Message, opts []triple.CallOption) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	desc := &triple.StreamDesc{StreamName: string(c.md.Name()), ClientStreams: c.md.IsStreamingClient(), ServerStreams: c.md.IsStreamingServer()}
	st, err := cc.NewStream(ctx, desc, c.path, opts...)
	if err != nil {
		c.status(err)
		return err
	}
	// Send in the background so that a bidi stream's answers print as they
	// come; the receive loop below ends the call. A send that fails here
	// (not io.EOF, which means the server ended the call) cancels it.
	sent := make(chan error, 1)
	go func() {
		var err error
		for _, m := range in {
			if err = st.SendMsg(m); err != nil {
				break
			}
		}
		if err == nil {
			err = st.CloseSend()
		}
		if err != nil && !errors.Is(err, io.EOF) {
			cancel()
		}
		sent <- err
	}()
	printedHeader := false
	for {
		out := dynamicpb.NewMessage(c.md.Output())
		err = st.RecvMsg(out)
		if !printedHeader {
			printedHeader = true
			if h, herr := st.Header(); herr == nil {
				c.verbose("headers", h)
			}
		}
		if err != nil {
			break
		}
		if err = c.print(out, !c.md.IsStreamingServer()); err != nil {
			break
		}
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	cancel() // the call is over: stop a sender still blocked on flow control
	sendErr := <-sent
	if sendErr != nil && !errors.Is(sendErr, io.EOF) && triple.CodeOf(sendErr) != triple.CodeCanceled {
		err = sendErr // the send failed first and cancelled the call
	}
	c.verbose("trailers", st.Trailer())
	c.status(err)
	return err
}

// http calls a unary method as HTTP/1.1 JSON (POST /Service/Method).
func (c *caller) http(ctx context.Context, target string, md triple.Metadata, in []proto.Message) error {
	body, err := protojson.Marshal(in[0])
	if err != nil {
		return err
	}
	base := target
	if !strings.Contains(base, "://") || strings.HasPrefix(base, "tri://") {
		base = "http://" + strings.TrimPrefix(base, "tri://")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(base, "/")+c.path, bytes.NewReader(body))
	if err != nil {
		return usageErrorf("bad target %q: %w", target, err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range md {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if c.f.group != "" {
		req.Header.Set("tri-service-group", c.f.group)
	}
	if c.f.version != "" {
		req.Header.Set("tri-service-version", c.f.version)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		code := triple.CodeUnavailable
		if ctx.Err() != nil {
			code = triple.CodeOf(ctx.Err())
		}
		err = triple.Errorf(code, "%v", err)
		c.status(err)
		return err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return triple.Errorf(triple.CodeUnavailable, "read the response: %v", err)
	}
	hdr := triple.Metadata{}
	for k, vs := range resp.Header {
		hdr[strings.ToLower(k)] = vs
	}
	c.verbose("headers", hdr)
	if resp.StatusCode != http.StatusOK {
		err := httpError(resp.StatusCode, rb)
		c.status(err)
		return err
	}
	out := dynamicpb.NewMessage(c.md.Output())
	if err := (protojson.UnmarshalOptions{Resolver: c.types, DiscardUnknown: true}).Unmarshal(rb, out); err != nil {
		return triple.Errorf(triple.CodeInternal, "the response is not a %s: %v", c.md.Output().FullName(), err)
	}
	c.status(nil)
	return c.print(out, true)
}

// httpError reads Dubbo's JSON error body, or maps the HTTP status.
func httpError(status int, body []byte) error {
	var je struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &je) == nil && je.Code != "" {
		if code, err := triple.ParseCode(je.Code); err == nil {
			return triple.NewError(code, je.Message)
		}
	}
	return triple.Errorf(triple.Code(call.CodeForHTTPStatus(status)), "HTTP status %d: %s", status, strings.TrimSpace(string(body)))
}

// print writes one response: indented for a single answer, one line per
// message for a stream. protojson varies its spacing on purpose, so the
// output is reformatted with encoding/json for stable text.
func (c *caller) print(m proto.Message, single bool) error {
	b, err := protojson.MarshalOptions{Resolver: c.types}.Marshal(m)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if single && c.f.output != formatYAML {
		err = json.Indent(&buf, b, "", "  ")
	} else {
		err = json.Compact(&buf, b)
	}
	if err != nil {
		return err
	}
	if c.f.output == formatYAML {
		if !single {
			if _, err := io.WriteString(c.e.stdout, "---\n"); err != nil {
				return err
			}
		}
		return writeJSONAs(c.e.stdout, formatYAML, buf.Bytes())
	}
	buf.WriteByte('\n')
	_, err = c.e.stdout.Write(buf.Bytes())
	return err
}

func (c *caller) verbose(what string, md triple.Metadata) {
	if !c.f.verbose || len(md) == 0 {
		return
	}
	fmt.Fprintf(c.e.stderr, "%s:\n", what)
	for _, k := range sortedKeys(md) {
		for _, v := range md[k] {
			fmt.Fprintf(c.e.stderr, "  %s: %s\n", k, v)
		}
	}
}

func (c *caller) status(err error) {
	if !c.f.verbose {
		return
	}
	if c.endpoint != nil {
		if ep := c.endpoint.String(); ep != "" {
			fmt.Fprintf(c.e.stderr, "endpoint: %s\n", ep)
		}
	}
	code := triple.CodeOf(err)
	fmt.Fprintf(c.e.stderr, "status: %d %s\n", code, strings.ToUpper(code.String()))
}

func methodNames(sd protoreflect.ServiceDescriptor) []string {
	ms := sd.Methods()
	out := make([]string, 0, ms.Len())
	for i := range ms.Len() {
		out = append(out, string(ms.Get(i).Name()))
	}
	return out
}
