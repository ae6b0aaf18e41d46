// Package hessian calls and serves methods of plain Java interfaces over
// Triple in wrapper mode, the way Dubbo Java 3.3 does when a method has
// non-protobuf parameters or results: each argument is encoded with hessian2
// (github.com/apache/dubbo-go-hessian2) and carried in the
// TripleRequestWrapper/TripleResponseWrapper envelopes of package triple.
//
// A client calls with Go values and the Java types the method declares:
//
//	greeting, err := hessian.Call[string](ctx, cc, "org.example.GreetingService", "greet",
//		[]hessian.Arg{hessian.String("Ada")}, triple.WithGroup("g1"))
//
// A server registers handlers per method:
//
//	svc := hessian.NewService("org.example.GreetingService")
//	svc.Handle("greet", hessian.Unary(func(ctx context.Context, name string) (string, error) {
//		return "Hello, " + name, nil
//	}))
//	err := svc.Register(srv, triple.ServiceGroup("g1"))
//
// Java objects map to Go structs registered with RegisterPOJO (their
// JavaClassName names the Java class). A Java exception thrown by the far
// side surfaces as an *Exception error with the Java class name and message;
// a handler returns an *Exception to throw one to a Java caller.
package hessian
