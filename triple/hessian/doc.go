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
// A Java method of any arity is served by a plain Go function, whose
// signature is checked when it is registered, and called through a typed
// func variable bound with Bind:
//
//	// BigDecimal quote(String symbol, int qty)
//	err := svc.HandleFunc("quote", func(ctx context.Context, symbol string, qty int32) (*big.Decimal, error) { ... })
//
//	var quote func(ctx context.Context, symbol string, qty int32) (*big.Decimal, error)
//	err = hessian.Bind(&quote, cc, "org.example.QuoteService", "quote")
//	total, err := quote(ctx, "ACME", 3)
//
// # Java and Go types
//
// A typed function's Go types give the Java parameter types a call declares
// (Dubbo picks overloads by them), and the arguments convert to them on the
// serving side. Against Apache Dubbo 3.3.6 both ways (interop
// TestHessianJava, which calls io.shoalmesh.samples.QuoteService of
// samples/java):
//
//	Java                      Go
//	String                    string
//	String (may be null)      *string (a nil pointer is null), also as a POJO field
//	int / Integer             int32 / *int32   (not int: Go's int declares long)
//	long / Long               int64 / *int64
//	boolean, double           bool, float64
//	BigDecimal                *big.Decimal of github.com/dubbogo/gost/math/big (scale kept)
//	Map<String, Object>       map[string]any; values: Integer int32, Long int64,
//	                          Double float64, Boolean bool, null nil, a List []any,
//	                          BigDecimal *big.Decimal (Go's int goes as a Long)
//	List<Pojo>                []*Pojo, the POJO registered with RegisterPOJO
//	a Java class              a pointer to a registered POJO struct
//	void                      func(ctx, args...) error
//
// A Java exception, declared or not (an IllegalArgumentException), is an
// *Exception with its class and message, and Throw reaches a Java caller as
// the exception of that class. A number converts to a parameter or result
// of another Go number type only when it fits (TestMethodNumbersMustFit);
// byte[] is []byte, any map[K]V declares java.util.Map and a raw Func
// receives a Map as map[any]any (TestJavaTypes, between Go peers).
//
// A null value in a Java map arrives as a nil entry, and an empty List
// (ArrayList) in a POJO field as an empty slice, a null one as nil
// (TestHessianJava; TestDecodeKeepsJavaMapNulls, TestDecodeKeepsEmptyListFields
// and TestDecodeKeepsEmptyBasicListFields for the element types: []*Pojo,
// []string, []int32, []int64, []float64, []bool, in a POJO registered with
// this package's RegisterPOJO). Known gap: other empty collections in typed
// slice fields (an empty LinkedList, a []Pojo of values) still arrive as
// nil, as dubbo-go-hessian2 v1.13.2 decodes them.
//
// Java objects map to Go structs registered with RegisterPOJO (their
// JavaClassName names the Java class). A Java exception thrown by the far
// side surfaces as an *Exception error with the Java class name and message;
// a handler returns an *Exception to throw one to a Java caller.
package hessian
