// Package triple implements the Triple RPC protocol of Apache Dubbo 3: gRPC
// over HTTP/2, wire-compatible with Dubbo Java 3.3, dubbo-go and grpc-go,
// plus unary HTTP/1.1 + JSON on the same port so that curl works.
//
// A Server serves services registered by descriptor under an optional group
// and version, with Dubbo's lookup rules. A ClientConn calls one endpoint;
// generated clients (protoc-gen-go-triple) call through the Invoker
// interface, which the sdk also implements with routing and load balancing
// over many ClientConns.
//
// Methods of plain Java interfaces (Dubbo's wrapper mode: hessian2 values in
// the WrapperRequest/WrapperResponse envelopes, exceptions flagged by
// tri-exception-code) are called and served with package triple/hessian.
//
// Errors are *Error values with a Code; metadata (Dubbo attachments) travels
// in the context with NewOutgoingContext and FromIncomingContext.
package triple
