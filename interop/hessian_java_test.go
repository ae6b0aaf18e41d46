package interop

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	big "github.com/dubbogo/gost/math/big"

	"github.com/shoalmesh/shoal/interop/peer/java"
	"github.com/shoalmesh/shoal/interop/peer/proc"
	"github.com/shoalmesh/shoal/triple"
	"github.com/shoalmesh/shoal/triple/hessian"
)

// io.shoalmesh.samples.QuoteService (samples/java) and its classes.
const (
	quoteService   = "io.shoalmesh.samples.QuoteService"
	quoteException = "io.shoalmesh.samples.QuoteException"
	illegalArg     = "java.lang.IllegalArgumentException"
)

// order is io.shoalmesh.samples.Order: a String that may be null and a
// List<OrderLine>.
type order struct {
	ID    string       `hessian:"id"`
	Note  *string      `hessian:"note"`
	Lines []*orderLine `hessian:"lines"`
}

func (order) JavaClassName() string { return "io.shoalmesh.samples.Order" }

// orderLine is io.shoalmesh.samples.OrderLine.
type orderLine struct {
	SKU      string `hessian:"sku"`
	Quantity int32  `hessian:"quantity"`
}

func (orderLine) JavaClassName() string { return "io.shoalmesh.samples.OrderLine" }

func init() {
	hessian.RegisterPOJO(&order{})
	hessian.RegisterPOJO(&orderLine{})
}

// quoteFuncs are QuoteService's methods as Go functions: bound to a Java
// provider with hessian.Bind, or served to a Java consumer with
// hessian.Service.HandleFunc.
type quoteFuncs struct {
	quote     func(ctx context.Context, symbol string, quantity int32) (*big.Decimal, error)
	confirm   func(ctx context.Context, o *order) (*order, error)
	total     func(ctx context.Context, lines []*orderLine) (int32, error)
	lines     func(ctx context.Context, o *order) ([]*orderLine, error)
	inspect   func(ctx context.Context, attrs map[string]any) (map[string]any, error)
	record    func(ctx context.Context, symbol string, quantity int32) error
	summarize func(ctx context.Context, id int64, urgent bool, ratio float64, limit *int32) (string, error)
}

func (q *quoteFuncs) byMethod() map[string]any {
	return map[string]any{
		"quote": &q.quote, "confirm": &q.confirm, "total": &q.total, "lines": &q.lines, "inspect": &q.inspect, "record": &q.record, "summarize": &q.summarize,
	}
}

// TestHessianJava calls io.shoalmesh.samples.QuoteService, a plain Java
// interface (samples/java), between Go and Apache Dubbo 3.3.6 in both
// directions, in wrapper mode (hessian2): several arguments of mixed types,
// BigDecimal, a POJO with a null String and a List of POJOs, a List of
// POJOs as argument and result, a Map<String, Object> with a null value, a
// void method, thrown exceptions, and (Go to Java) overloads that show the
// Java type Bind declares. Each value is compared exactly on the side that
// receives it: shoal->java here, java->shoal in the Java consumer
// (consumer-quote) for the answers and here for what the Go functions got.
func TestHessianJava(t *testing.T) {
	jar := javaJar(t)
	t.Run("shoal->java", func(t *testing.T) { goCallsJava(t, jar) })
	t.Run("java->shoal", func(t *testing.T) { javaCallsGo(t, jar) })
}

// goCallsJava binds QuoteService's methods with hessian.Bind and calls the
// Java provider.
func goCallsJava(t *testing.T, jar string) {
	addr, _, _ := sharedJavaProvider(t, jar).Start(context.Background())
	cc, err := triple.Dial("tri://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cc.Close() }()
	var q quoteFuncs
	for method, fn := range q.byMethod() {
		if err := hessian.Bind(fn, cc, quoteService, method); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("quote", func(t *testing.T) {
		for _, c := range []struct {
			symbol string
			qty    int32
			want   string
		}{{"ACME", 3, "37.02"}, {"BOND", 2, "199.00"}} { // BigDecimal keeps its scale
			got, err := q.quote(ctx, c.symbol, c.qty)
			if err != nil || got == nil || got.String() != c.want {
				t.Errorf("quote(%s, %d) = %v, %v; want %s", c.symbol, c.qty, got, err, c.want)
			}
		}
	})
	t.Run("exception", func(t *testing.T) {
		_, err := q.quote(ctx, "NOPE", 1)
		wantException(t, err, quoteException, "unknown symbol NOPE")
		err = q.record(ctx, "ACME", 0)
		wantException(t, err, illegalArg, "quantity must be positive, got 0")
	})
	t.Run("confirm", func(t *testing.T) {
		gift := "gift"
		for _, c := range []struct{ in, want *order }{
			{
				&order{ID: "o-1", Lines: []*orderLine{{"a", 1}, {"b", 2}}}, // a null note
				&order{ID: "confirmed-o-1/2", Lines: []*orderLine{{"a", 2}, {"b", 4}}},
			},
			// An empty list stays empty both ways (Java received 0 lines).
			{&order{ID: "o-2", Note: &gift, Lines: []*orderLine{}}, &order{ID: "confirmed-o-2/0", Note: &gift, Lines: []*orderLine{}}},
			{&order{ID: "o-3"}, &order{ID: "confirmed-o-3/null"}}, // a null list
		} {
			got, err := q.confirm(ctx, c.in)
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Errorf("confirm(%s) = %s, %v; want %s", describe(c.in), describe(got), err, describe(c.want))
			}
		}
	})
	t.Run("list of POJOs", func(t *testing.T) {
		in := []*orderLine{{"a", 3}, {"b", 4}}
		if n, err := q.total(ctx, in); err != nil || n != 7 {
			t.Errorf("total(%s) = %d, %v; want 7", describe(in), n, err)
		}
		got, err := q.lines(ctx, &order{ID: "o-4", Lines: in})
		if err != nil || !reflect.DeepEqual(got, in) {
			t.Errorf("lines = %s, %v; want %s", describe(got), err, describe(in))
		}
	})
	t.Run("inspect", func(t *testing.T) {
		in := map[string]any{
			"name": "x", "count": int32(3), "total": int64(1) << 40, "n": 7, "ratio": 0.5, "ok": true, "none": nil,
			"tags": []any{"a", "b"}, "price": mustDecimal(t, "1.50"),
		}
		// The Java classes the provider received, and the Go types the
		// same values come back as (in a LinkedHashMap, a typed hessian2
		// map, whose null value arrives too).
		want := map[string]any{
			"name": "x", "count": int32(3), "total": int64(1) << 40, "n": int64(7), "ratio": 0.5, "ok": true, "none": nil,
			"tags": []any{"a", "b"}, "price": mustDecimal(t, "1.50"),
			"name:type": "java.lang.String", "count:type": "java.lang.Integer", "total:type": "java.lang.Long",
			"n:type": "java.lang.Long", "ratio:type": "java.lang.Double", "ok:type": "java.lang.Boolean",
			"none:type": "null", "tags:type": "java.util.ArrayList", "price:type": "java.math.BigDecimal",
		}
		got, err := q.inspect(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if diff := mapDiff(want, got); diff != "" {
			t.Errorf("inspect:\n%s", diff)
		}
	})
	t.Run("overloads", func(t *testing.T) {
		// QuoteService.kind has an overload per Java type: the one Dubbo
		// picks shows the parameter type Bind declared for the Go type.
		var (
			kindInt     func(context.Context, int32) (string, error)
			kindLong    func(context.Context, int64) (string, error)
			kindInteger func(context.Context, *int32) (string, error)
			kindLongBox func(context.Context, *int64) (string, error)
			kindString  func(context.Context, *string) (string, error)
		)
		for _, fn := range []any{&kindInt, &kindLong, &kindInteger, &kindLongBox, &kindString} {
			if err := hessian.Bind(fn, cc, quoteService, "kind"); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			call func() (string, error)
			want string
		}{
			{func() (string, error) { return kindInt(ctx, 3) }, "int 3"},
			{func() (string, error) { return kindLong(ctx, 1<<40) }, "long 1099511627776"},
			{func() (string, error) { return kindInteger(ctx, ptr(int32(-4))) }, "Integer -4"},
			{func() (string, error) { return kindInteger(ctx, nil) }, "Integer null"},
			{func() (string, error) { return kindLongBox(ctx, nil) }, "Long null"},
			{func() (string, error) { return kindString(ctx, nil) }, "String null"},
			{func() (string, error) { return kindString(ctx, ptr("s")) }, "String s"},
		} {
			if got, err := c.call(); err != nil || got != c.want {
				t.Errorf("kind = %q, %v; want %q", got, err, c.want)
			}
		}
	})
	t.Run("void", func(t *testing.T) {
		if err := q.record(ctx, "ACME", 5); err != nil {
			t.Errorf("record(ACME, 5) = %v, want nil", err)
		}
	})
	t.Run("mixed arguments", func(t *testing.T) {
		seven := int32(7)
		for _, c := range []struct {
			id     int64
			urgent bool
			ratio  float64
			limit  *int32
			want   string
		}{
			{9007199254740993, true, 0.1, nil, "9007199254740993|true|0.1|null"}, // 2^53+1: exact only as a long
			{-1, false, -2.5, &seven, "-1|false|-2.5|7"},
		} {
			got, err := q.summarize(ctx, c.id, c.urgent, c.ratio, c.limit)
			if err != nil || got != c.want {
				t.Errorf("summarize(%d, %t, %v, %v) = %q, %v; want %q", c.id, c.urgent, c.ratio, c.limit, got, err, c.want)
			}
		}
	})
}

// quoteProvider is QuoteService served from Go with HandleFunc, as
// QuoteService's comments describe it, except that inspect names the Go
// types it received. It keeps the arguments of every call.
type quoteProvider struct {
	mu  sync.Mutex
	got map[string][][]any // method -> the arguments of each call
}

func (p *quoteProvider) keep(method string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got[method] = append(p.got[method], args)
}

func (p *quoteProvider) funcs() *quoteFuncs {
	prices := map[string]string{"ACME": "12.34", "BOND": "99.50"}
	return &quoteFuncs{
		quote: func(_ context.Context, symbol string, quantity int32) (*big.Decimal, error) {
			p.keep("quote", symbol, quantity)
			price, ok := prices[symbol]
			if !ok {
				return nil, hessian.Throw(quoteException, "unknown symbol "+symbol)
			}
			d, err := big.NewDecFromString(price)
			if err != nil {
				return nil, err
			}
			var total big.Decimal
			err = big.DecimalMul(d, big.NewDecFromInt(int64(quantity)), &total)
			return &total, err
		},
		confirm: func(_ context.Context, o *order) (*order, error) {
			p.keep("confirm", o)
			out := &order{ID: "confirmed-" + o.ID + "/null", Note: o.Note}
			if o.Lines != nil {
				out.ID = "confirmed-" + o.ID + "/" + strconv.Itoa(len(o.Lines))
				out.Lines = make([]*orderLine, 0, len(o.Lines))
				for _, l := range o.Lines {
					out.Lines = append(out.Lines, &orderLine{SKU: l.SKU, Quantity: l.Quantity * 2})
				}
			}
			return out, nil
		},
		total: func(_ context.Context, lines []*orderLine) (int32, error) {
			p.keep("total", lines)
			var n int32
			for _, l := range lines {
				n += l.Quantity
			}
			return n, nil
		},
		lines: func(_ context.Context, o *order) ([]*orderLine, error) {
			p.keep("lines", o)
			return o.Lines, nil
		},
		inspect: func(_ context.Context, attrs map[string]any) (map[string]any, error) {
			p.keep("inspect", attrs)
			out := make(map[string]any, 2*len(attrs))
			for k, v := range attrs {
				out[k] = v
				out[k+":type"] = "null"
				if v != nil {
					out[k+":type"] = fmt.Sprintf("%T", v)
				}
			}
			return out, nil
		},
		record: func(_ context.Context, symbol string, quantity int32) error {
			p.keep("record", symbol, quantity)
			if quantity <= 0 {
				return hessian.Throw(illegalArg, "quantity must be positive, got "+strconv.Itoa(int(quantity)))
			}
			return nil
		},
		summarize: func(_ context.Context, id int64, urgent bool, ratio float64, limit *int32) (string, error) {
			p.keep("summarize", id, urgent, ratio, limit)
			l := "null"
			if limit != nil {
				l = strconv.Itoa(int(*limit))
			}
			return fmt.Sprintf("%d|%t|%s|%s", id, urgent, strconv.FormatFloat(ratio, 'g', -1, 64), l), nil
		},
	}
}

// javaCallsGo serves QuoteService from Go functions registered with
// HandleFunc and runs the Java consumer (consumer-quote), which checks every
// answer on the Java side; the test checks what the Go functions received.
func javaCallsGo(t *testing.T, jar string) {
	p := &quoteProvider{got: map[string][][]any{}}
	svc := hessian.NewService(quoteService)
	for method, fn := range p.funcs().byMethod() {
		if err := svc.HandleFunc(method, reflect.ValueOf(fn).Elem().Interface()); err != nil {
			t.Fatal(err)
		}
	}
	srv := triple.NewServer()
	if err := svc.Register(srv); err != nil {
		t.Fatal(err)
	}
	addr := serveLoopback(t, srv)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "java", java.Args(jar, "consumer-quote", "--target", "tri://"+addr)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var passed, failed []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if name, ok := strings.CutPrefix(sc.Text(), "PASS "); ok {
			passed = append(passed, name)
		} else if strings.HasPrefix(sc.Text(), "FAIL ") {
			failed = append(failed, sc.Text())
		}
	}
	for _, f := range failed {
		t.Error("the Java consumer: " + f)
	}
	if err != nil && len(failed) == 0 {
		t.Fatalf("the Java consumer: %v; stderr ends: %s", err, proc.Tail(stderr.String()))
	}
	if err == nil && len(failed) > 0 {
		t.Error("the Java consumer exited 0 after failed checks")
	}
	want := []string{
		"quote", "quote-scale", "quote-exception", "confirm-null-note", "confirm-note-empty-lines",
		"confirm-null-lines", "total", "lines", "inspect", "record", "record-exception", "summarize-null-limit", "summarize-limit",
	}
	if got := append(passed, failed...); len(got) != len(want) {
		t.Errorf("the Java consumer reported checks %v, want %v", passed, want)
	}
	if len(failed) == 0 && !slices.Equal(passed, want) {
		t.Errorf("the Java consumer passed %v, want %v", passed, want)
	}

	// What the Go functions received from Java.
	gift := "gift"
	wantGot := map[string][][]any{
		"quote": {{"ACME", int32(3)}, {"BOND", int32(2)}, {"NOPE", int32(1)}},
		"confirm": {
			{&order{ID: "o-1", Lines: []*orderLine{{"a", 1}, {"b", 2}}}},
			{&order{ID: "o-2", Note: &gift, Lines: []*orderLine{}}},
			{&order{ID: "o-3"}},
		},
		"total": {{[]*orderLine{{"a", 3}, {"b", 4}}}},
		"lines": {{&order{ID: "o-4", Lines: []*orderLine{{"a", 3}, {"b", 4}}}}},
		"inspect": {{map[string]any{
			"name": "x", "count": int32(3), "total": int64(1) << 40, "ratio": 0.5, "ok": true, "none": nil,
			"tags": []any{"a", "b"}, "price": mustDecimal(t, "1.50"),
		}}},
		"record":    {{"ACME", int32(5)}, {"ACME", int32(0)}},
		"summarize": {{int64(9007199254740993), true, 0.1, (*int32)(nil)}, {int64(-1), false, -2.5, ptr(int32(7))}},
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for method, want := range wantGot {
		if got := p.got[method]; !reflect.DeepEqual(canon(got), canon(want)) {
			t.Errorf("%s received %s\nwant %s", method, describe(got), describe(want))
		}
	}
}

// wantException fails unless err is the Java exception class: message,
// as the Go caller sees it.
func wantException(t *testing.T, err error, class, message string) {
	t.Helper()
	var ex *hessian.Exception
	if !errors.As(err, &ex) || ex.Class != class || ex.Message != message {
		t.Errorf("got error %v, want the Java exception %s: %s", err, class, message)
		return
	}
	if want := "java exception " + class + ": " + message; err.Error() != want {
		t.Errorf("error text %q, want %q", err.Error(), want)
	}
}

// mapDiff lists the entries of got that differ from want (values and Go
// types), or "".
func mapDiff(want, got map[string]any) string {
	var b strings.Builder
	keys := make([]string, 0, len(want)+len(got))
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		w, inWant := want[k]
		g, inGot := got[k]
		switch {
		case !inGot:
			fmt.Fprintf(&b, "  %s: missing, want %#v (%T)\n", k, w, w)
			continue
		case !inWant:
			fmt.Fprintf(&b, "  %s: got %#v (%T), want no such key\n", k, g, g)
			continue
		}
		if reflect.DeepEqual(canon(w), canon(g)) {
			continue
		}
		fmt.Fprintf(&b, "  %s: got %#v (%T), want %#v (%T)\n", k, g, g, w, w)
	}
	return b.String()
}

// canon returns v with each *big.Decimal replaced by a string of its
// value, for reflect.DeepEqual: two equal decimals differ in their
// internal fields.
func canon(v any) any {
	switch x := v.(type) {
	case *big.Decimal:
		return "BigDecimal " + x.String()
	case [][]any:
		return canonAll(x)
	case []any:
		return canonAll(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = canon(e)
		}
		return out
	}
	return v
}

func canonAll[T any](x []T) []any {
	out := make([]any, len(x))
	for i, e := range x {
		out[i] = canon(e)
	}
	return out
}

// describe prints v with pointers followed, for failure messages.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "nil"
	case *order:
		if x == nil {
			return "nil"
		}
		note := "nil"
		if x.Note != nil {
			note = strconv.Quote(*x.Note)
		}
		return fmt.Sprintf("{ID:%q Note:%s Lines:%s}", x.ID, note, describe(x.Lines))
	case *int32:
		if x == nil {
			return "nil"
		}
		return fmt.Sprintf("&%d", *x)
	case []*orderLine:
		if x == nil {
			return "nil"
		}
		ls := make([]string, len(x))
		for i, l := range x {
			ls[i] = fmt.Sprintf("%+v", *l)
		}
		return "[" + strings.Join(ls, " ") + "]"
	case [][]any:
		calls := make([]string, len(x))
		for i, args := range x {
			calls[i] = describe(args)
		}
		return strings.Join(calls, "; ")
	case []any:
		parts := make([]string, len(x))
		for i, a := range x {
			parts[i] = describe(a)
		}
		return "(" + strings.Join(parts, ", ") + ")"
	default:
		return fmt.Sprintf("%T(%#v)", v, canon(v))
	}
}

func mustDecimal(t *testing.T, s string) *big.Decimal {
	t.Helper()
	d, err := big.NewDecFromString(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func ptr[T any](v T) *T { return &v }
