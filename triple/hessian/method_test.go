package hessian_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	big "github.com/dubbogo/gost/math/big"

	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/hessian"
)

const quoteService = "org.example.QuoteService"

// line and order stand for Java POJOs:
//
//	class Line { String sku; int qty; BigDecimal price; }
//	class Order { String id; String note; List<Line> lines; Map<String, String> attrs; BigDecimal total; }
type line struct {
	Sku   string
	Qty   int32
	Price *big.Decimal
}

func (line) JavaClassName() string { return "org.example.Line" }

type order struct {
	ID    string `hessian:"id"`
	Note  *string
	Lines []*line
	Attrs map[string]string
	Total *big.Decimal
}

func (order) JavaClassName() string { return "org.example.Order" }

func init() {
	hessian.RegisterPOJO(&line{})
	hessian.RegisterPOJO(&order{})
}

// quoteServer serves, from plain Go functions:
//
//	BigDecimal quote(String symbol, int qty)
//	Order place(Order o)              // fills total, notes a null note
//	int count(Map<String, Integer> m) // sums the values
//	void audit(String what, long at)  // throws when what is empty
func quoteServer(t *testing.T) *hessian.Service {
	t.Helper()
	svc := hessian.NewService(quoteService)
	for name, fn := range map[string]any{
		"quote": func(_ context.Context, symbol string, qty int32) (*big.Decimal, error) {
			price, err := big.NewDecFromString(map[string]string{"ACME": "12.34"}[symbol])
			if err != nil {
				return nil, hessian.Throw("java.lang.IllegalArgumentException", "unknown symbol "+symbol)
			}
			var total big.Decimal
			err = big.DecimalMul(price, big.NewDecFromInt(int64(qty)), &total)
			return &total, err
		},
		"place": func(_ context.Context, o *order) (*order, error) {
			total := big.NewDecFromInt(0)
			for _, l := range o.Lines {
				var sub, sum big.Decimal
				if err := big.DecimalMul(l.Price, big.NewDecFromInt(int64(l.Qty)), &sub); err != nil {
					return nil, err
				}
				if err := big.DecimalAdd(total, &sub, &sum); err != nil {
					return nil, err
				}
				total = &sum
			}
			o.Total = total
			if o.Note == nil {
				note := "no note"
				o.Note = &note
			}
			return o, nil
		},
		"count": func(_ context.Context, m map[string]int32) (int32, error) {
			var n int32
			for _, v := range m {
				n += v
			}
			return n, nil
		},
		"audit": func(_ context.Context, what string, _ int64) error {
			if what == "" {
				return hessian.Throw("java.lang.IllegalArgumentException", "nothing to audit")
			}
			return nil
		},
	} {
		if err := svc.HandleFunc(name, fn); err != nil {
			t.Fatal(err)
		}
	}
	return svc
}

// quoteClient is the typed client of quoteServer's methods.
type quoteClient struct {
	quote func(ctx context.Context, symbol string, qty int32) (*big.Decimal, error)
	place func(ctx context.Context, o *order) (*order, error)
	count func(ctx context.Context, m map[string]int32) (int32, error)
	audit func(ctx context.Context, what string, at int64) error
}

func bindQuote(t *testing.T, inv triple.Invoker) *quoteClient {
	t.Helper()
	c := &quoteClient{}
	for method, fn := range map[string]any{"quote": &c.quote, "place": &c.place, "count": &c.count, "audit": &c.audit} {
		if err := hessian.Bind(fn, inv, quoteService, method); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func TestMethodRoundTrip(t *testing.T) {
	cc := serve(t, func(srv *triple.Server) error { return quoteServer(t).Register(srv) })
	c := bindQuote(t, cc)

	total, err := c.quote(ctx(t), "ACME", 3)
	if err != nil {
		t.Fatal(err)
	}
	if total.String() != "37.02" {
		t.Errorf("quote(ACME, 3) = %s, want 37.02", total)
	}

	note := "leave at the door"
	for _, in := range []*order{
		{ID: "o-1", Note: &note, Attrs: map[string]string{"channel": "web"}, Lines: []*line{
			{Sku: "a", Qty: 2, Price: mustDec(t, "1.50")},
			{Sku: "b", Qty: 1, Price: mustDec(t, "0.25")},
		}},
		{ID: "o-2"}, // a null note and no lines
	} {
		got, err := c.place(ctx(t), in)
		if err != nil {
			t.Fatal(err)
		}
		wantNote, wantTotal := "no note", "0"
		if in.Note != nil {
			wantNote, wantTotal = *in.Note, "3.25"
		}
		if got.ID != in.ID || got.Note == nil || *got.Note != wantNote || got.Total.String() != wantTotal ||
			len(got.Lines) != len(in.Lines) || fmt.Sprint(got.Attrs) != fmt.Sprint(in.Attrs) {
			t.Errorf("place(%+v) = %+v (note %v, total %v)", in, got, deref(got.Note), got.Total)
		}
		for i, l := range got.Lines {
			if l.Sku != in.Lines[i].Sku || l.Qty != in.Lines[i].Qty || l.Price.String() != in.Lines[i].Price.String() {
				t.Errorf("line %d came back as %+v", i, l)
			}
		}
	}

	if n, err := c.count(ctx(t), map[string]int32{"a": 2, "b": 3}); err != nil || n != 5 {
		t.Errorf("count = %d, %v; want 5", n, err)
	}

	if err := c.audit(ctx(t), "login", 1700000000000); err != nil {
		t.Errorf("audit: %v", err)
	}
	var ex *hessian.Exception
	if err := c.audit(ctx(t), "", 0); !errors.As(err, &ex) || ex.Message != "nothing to audit" {
		t.Errorf("audit(\"\") = %v, want the thrown IllegalArgumentException", err)
	}
	if _, err := c.quote(ctx(t), "NOPE", 1); !errors.As(err, &ex) || !strings.Contains(ex.Message, "unknown symbol") {
		t.Errorf("quote(NOPE) = %v, want the thrown IllegalArgumentException", err)
	}
}

// A call with the wrong number of arguments (an untyped client) fails with
// INVALID_ARGUMENT; so does an argument that does not convert.
func TestMethodArgumentMismatch(t *testing.T) {
	cc := serve(t, func(srv *triple.Server) error { return quoteServer(t).Register(srv) })
	for name, args := range map[string][]hessian.Arg{
		"too few":    {hessian.String("ACME")},
		"wrong type": {hessian.String("ACME"), hessian.String("three")},
	} {
		_, err := hessian.Call[*big.Decimal](ctx(t), cc, quoteService, "quote", args)
		if triple.CodeOf(err) != triple.CodeInvalidArgument {
			t.Errorf("%s: %v, want INVALID_ARGUMENT", name, err)
		}
	}
}

func TestMethodRejectsSignature(t *testing.T) {
	for name, tt := range map[string]struct {
		fn   any
		want string
	}{
		"not a function":   {42, "not a function"},
		"nil function":     {(func(context.Context) error)(nil), "not a function"},
		"no context":       {func(string) (string, error) { return "", nil }, "first parameter must be a context.Context"},
		"no error":         {func(context.Context, string) string { return "" }, "last result must be an error"},
		"two values":       {func(context.Context) (string, string, error) { return "", "", nil }, "last result must be an error"},
		"variadic":         {func(context.Context, ...string) error { return nil }, "variadic"},
		"channel argument": {func(context.Context, chan int) error { return nil }, "parameter 2: hessian2 cannot carry chan int"},
		"func in a map":    {func(context.Context, map[string]func()) error { return nil }, "cannot carry func()"},
		"interface result": {func(context.Context) (fmt.Stringer, error) { return nil, nil }, "result: hessian2 cannot carry fmt.Stringer"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := hessian.Method(tt.fn); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Method: %v, want an error containing %q", err, tt.want)
			}
			svc := hessian.NewService(quoteService)
			if err := svc.HandleFunc("m", tt.fn); err == nil || !strings.Contains(err.Error(), quoteService+".m") {
				t.Errorf("HandleFunc: %v, want an error naming %s.m", err, quoteService)
			}
			if len(svc.Desc().Methods) != 0 {
				t.Error("HandleFunc added a method with a bad signature")
			}
		})
	}
	var notFunc int
	if err := hessian.Bind(&notFunc, nil, quoteService, "m"); err == nil || !strings.Contains(err.Error(), "pointer to a func variable") {
		t.Errorf("Bind(*int): %v", err)
	}
	var noCtx func(string) error
	if err := hessian.Bind(&noCtx, nil, quoteService, "m"); err == nil || !strings.Contains(err.Error(), "context.Context") {
		t.Errorf("Bind(func(string) error): %v", err)
	}
}

// TestJavaTypes shows the Java types a bound call declares on the wire
// (what a Java provider selects its overload by) and the Go types the
// arguments arrive as in a raw hessian.Func.
func TestJavaTypes(t *testing.T) {
	var (
		gotTypes []string
		gotArgs  []string
	)
	recorder := &triple.ServiceDesc{ServiceName: "org.example.Recorder", Methods: []triple.MethodDesc{{
		MethodName: "types",
		Handler: func(_ any, _ context.Context, dec func(any) error, _ triple.UnaryServerInterceptor) (any, error) {
			var req triple.WrapperRequest
			if err := dec(&req); err != nil {
				return nil, err
			}
			gotTypes = req.ArgTypes
			return &triple.WrapperResponse{SerializeType: triple.SerializeHessian2}, nil
		},
	}}}
	svc := hessian.NewService("org.example.Args").Handle("args", func(_ context.Context, args []any) (any, error) {
		for _, a := range args {
			gotArgs = append(gotArgs, fmt.Sprintf("%T", a))
		}
		return nil, nil
	})
	cc := serve(t, func(srv *triple.Server) error {
		if err := srv.Register(recorder, nil); err != nil {
			return err
		}
		return svc.Register(srv)
	})

	type sig = func(context.Context, string, int32, int64, bool, float64, []byte, *string, *int32,
		map[string]int32, []*line, *big.Decimal, *order) error
	var types, args sig
	if err := hessian.Bind(&types, cc, "org.example.Recorder", "types"); err != nil {
		t.Fatal(err)
	}
	if err := hessian.Bind(&args, cc, "org.example.Args", "args"); err != nil {
		t.Fatal(err)
	}
	s, n := "s", int32(7)
	call := func(f sig) error {
		return f(ctx(t), "s", 1, 2, true, 0.5, []byte("b"), &s, &n,
			map[string]int32{"k": 1}, []*line{{Sku: "a"}}, big.NewDecFromInt(3), &order{ID: "o"})
	}
	for _, c := range []struct {
		what string
		f    sig
		got  *[]string
		want []string
	}{
		{"declared Java types", types, &gotTypes, []string{
			"java.lang.String", "int", "long", "boolean", "double", "[B",
			"java.lang.String", "java.lang.Integer", "java.util.Map", "java.util.List", "java.math.BigDecimal", "org.example.Order",
		}},
		{"Go types of the arguments in a hessian.Func", args, &gotArgs, []string{
			"string", "int32", "int64", "bool", "float64", "[]uint8",
			"string", "int32", "map[interface {}]interface {}", "[]*hessian_test.line", "*gxbig.Decimal", "*hessian_test.order",
		}},
	} {
		if err := call(c.f); err != nil {
			t.Fatal(err)
		}
		if strings.Join(*c.got, " ") != strings.Join(c.want, " ") {
			t.Errorf("%s\n got %v\nwant %v", c.what, *c.got, c.want)
		}
	}
}

func mustDec(t *testing.T, s string) *big.Decimal {
	t.Helper()
	d, err := big.NewDecFromString(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func deref(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

// A number converts to a parameter or result of another Go number type only
// when its value fits: a Java long that overflows an int32 parameter, a
// negative int for an unsigned one or a double for an integer one fails
// with INVALID_ARGUMENT (a result that does not fit, with INTERNAL) instead
// of arriving as another number.
func TestMethodNumbersMustFit(t *testing.T) {
	svc := quoteServer(t)
	if err := svc.HandleFunc("octet", func(_ context.Context, b uint8) (int64, error) { return int64(b) << 40, nil }); err != nil {
		t.Fatal(err)
	}
	cc := serve(t, func(srv *triple.Server) error { return svc.Register(srv) })
	acme := hessian.String("ACME")
	for _, c := range []struct {
		method string
		arg    hessian.Arg
		code   triple.Code
		want   string // in the error
	}{
		{"quote", hessian.Long(3), triple.CodeOK, ""},
		{"quote", hessian.Long(1 << 40), triple.CodeInvalidArgument, "int64 1099511627776 overflows int32"},
		{"quote", hessian.Arg{Type: hessian.TypeDouble, Value: 2.5}, triple.CodeInvalidArgument, "float64 2.5 does not convert to int32"},
		{"octet", hessian.Int(255), triple.CodeOK, ""},
		{"octet", hessian.Int(256), triple.CodeInvalidArgument, "int32 256 overflows uint8"},
		{"octet", hessian.Int(-1), triple.CodeInvalidArgument, "int32 -1 overflows uint8"},
	} {
		args := []hessian.Arg{acme, c.arg}
		if c.method == "octet" {
			args = args[1:]
		}
		err := hessian.Invoke(ctx(t), cc, quoteService, c.method, args, nil)
		if triple.CodeOf(err) != c.code || c.want != "" && !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s(%v) = %v; want code %v and an error containing %q", c.method, c.arg.Value, err, c.code, c.want)
		}
	}
	// A result: octet(1) is 1 << 40, a long that no int32 holds.
	if n, err := hessian.Call[int32](ctx(t), cc, quoteService, "octet", []hessian.Arg{hessian.Int(1)}); triple.CodeOf(err) != triple.CodeInternal ||
		!strings.Contains(err.Error(), "overflows int32") {
		t.Errorf("octet(1) into an int32 = %d, %v; want INTERNAL, overflows int32", n, err)
	}
}
