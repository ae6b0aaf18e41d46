package hessian

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Values as Java writes them: Hessian2Output of hessian-lite, the hessian2
// of Dubbo 3.3.6 (samples/java's jar), printed in hex.
const (
	// new LinkedHashMap: "none" -> null, "a" -> new String[]{"x"},
	// "b" -> new String[]{"y"} (a reference to the type "[string"),
	// "inner" -> a HashMap {"z": null}, "set" -> a TreeSet {"s"},
	// "sets" -> a TreeSet {"t"} (a type reference).
	javaNestedMaps = "4d176a6176612e7574696c2e4c696e6b6564486173684d6170046e6f6e654e016171075b737472696e67017801627191" +
		"017905696e6e657248017a4e5a0373657471116a6176612e7574696c2e5472656553657401730473657473719201745a"
	// new LinkedHashMap: "é€😀" -> null, a 42-character key -> a TreeMap
	// {"k": 1}, "bytes" -> byte[]{1, 2, 3}, "long" -> 1L << 40,
	// "double" -> 0.1, "date" -> new Date(0), "tree" -> a TreeMap
	// {"x": null} (its type a reference).
	javaMixedMaps = "4d176a6176612e7574696c2e4c696e6b6564486173684d617004c3a9e282aceda0bdedb8804e302a6120737472696e67" +
		"206c6f6e676572207468616e207468697274792d6f6e6520636861726163746572734d116a6176612e7574696c2e54726565" +
		"4d6170016b915a05627974657323010203046c6f6e674c000001000000000006646f75626c655f0000006404646174654b00" +
		"00000004747265654d9101784e5a5a"
	// new io.shoalmesh.samples.Order("o-2", "gift", new ArrayList<>())
	javaOrderEmptyLines = "431a696f2e73686f616c6d6573682e73616d706c65732e4f7264657293056c696e6573046e6f74650269646078" +
		"0467696674036f2d32"
	// An ArrayList: Order("a", null, new ArrayList<>()), new String[]{"s"},
	// new String[]{"t"} (a type reference), a LinkedHashMap {"k": null},
	// Order("c", "n", new ArrayList<>()), Order("d", null, null),
	// Order("e", null, a list of OrderLine("x", 1)).
	javaOrders = "7f431a696f2e73686f616c6d6573682e73616d706c65732e4f7264657293056c696e6573046e6f746502696460784e0161" +
		"71075b737472696e670173719001744d176a6176612e7574696c2e4c696e6b6564486173684d6170016b4e5a6078016e01" +
		"63604e4e01646079431e696f2e73686f616c6d6573682e73616d706c65732e4f726465724c696e6592087175616e746974" +
		"7903736b75619101784e0165"
)

// rwOrder and rwLine are io.shoalmesh.samples.Order and OrderLine of
// samples/java.
type rwOrder struct {
	ID    string    `hessian:"id"`
	Note  *string   `hessian:"note"`
	Lines []*rwLine `hessian:"lines"`
}

func (rwOrder) JavaClassName() string { return "io.shoalmesh.samples.Order" }

type rwLine struct {
	Sku      string
	Quantity int32
}

func (rwLine) JavaClassName() string { return "io.shoalmesh.samples.OrderLine" }

// rwLists has a List field of each element type the rewrite knows.
type rwLists struct {
	S []string
	I []int32
	L []int64
	D []float64
	B []bool
}

func (rwLists) JavaClassName() string { return "org.example.Lists" }

func init() {
	RegisterPOJO(&rwOrder{})
	RegisterPOJO(&rwLine{})
	RegisterPOJO(&rwLists{})
}

// An empty ArrayList in a POJO's List field is an untyped hessian2 list,
// which dubbo-go-hessian2 v1.13.2 stores in the typed slice field as nil;
// decode keeps it empty, and a null list nil (as interop.TestHessianJava
// shows end to end). The second value also has type references after the
// list type decode adds and the map type it drops.
func TestDecodeKeepsEmptyListFields(t *testing.T) {
	n := "n"
	for _, c := range []struct {
		name, hex string
		want      any
	}{
		{"order", javaOrderEmptyLines, &rwOrder{ID: "o-2", Note: ptrTo("gift"), Lines: []*rwLine{}}},
		{"list", javaOrders, []any{
			&rwOrder{ID: "a", Lines: []*rwLine{}},
			[]string{"s"},
			[]string{"t"},
			map[any]any{"k": nil},
			&rwOrder{ID: "c", Note: &n, Lines: []*rwLine{}}, &rwOrder{ID: "d"},
			&rwOrder{ID: "e", Lines: []*rwLine{{Sku: "x", Quantity: 1}}},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := decode(mustHex(t, c.hex))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("decoded\n %s\nwant\n %s", dump(got), dump(c.want))
			}
		})
	}
}

// The same for List fields of strings, ints, longs, doubles and booleans:
// an org.example.Lists whose five fields hold empty ArrayLists, written as
// Java writes them (x78, as in javaOrderEmptyLines).
func TestDecodeKeepsEmptyBasicListFields(t *testing.T) {
	data := append([]byte{'C', 17}, "org.example.Lists"...)
	data = append(data, 0x95)
	for _, f := range []string{"s", "i", "l", "d", "b"} {
		data = append(data, 1, f[0])
	}
	data = append(data, 0x60, 0x78, 0x78, 0x78, 0x78, 0x78)
	got, err := decode(data)
	if err != nil {
		t.Fatal(err)
	}
	want := &rwLists{S: []string{}, I: []int32{}, L: []int64{}, D: []float64{}, B: []bool{}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded %#v, want %#v", got, want)
	}
}

func ptrTo[T any](v T) *T { return &v }

// dump prints v with the orders' pointers followed.
func dump(v any) string {
	switch x := v.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = dump(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case *rwOrder:
		lines := "nil"
		if x.Lines != nil {
			lines = fmt.Sprintf("%d lines", len(x.Lines))
		}
		return fmt.Sprintf("Order{%s note=%v %s}", x.ID, x.Note != nil, lines)
	}
	return fmt.Sprintf("%#v", v)
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A Java map other than a HashMap is a typed hessian2 map, whose null
// values dubbo-go-hessian2 v1.13.2 drops with their keys; decode keeps
// them (as interop.TestHessianJava shows end to end).
func TestDecodeKeepsJavaMapNulls(t *testing.T) {
	for _, c := range []struct {
		name, hex string
		want      map[any]any
	}{
		{"nested", javaNestedMaps, map[any]any{
			"none": nil, "a": []string{"x"}, "b": []string{"y"}, "inner": map[any]any{"z": nil},
			"set": []any{"s"}, "sets": []any{"t"},
		}},
		{"mixed", javaMixedMaps, map[any]any{
			"é€😀": nil, "a string longer than thirty-one characters": map[any]any{"k": int32(1)},
			"bytes": []byte{1, 2, 3}, "long": int64(1) << 40, "double": 0.1, "tree": map[any]any{"x": nil},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			v, err := decode(mustHex(t, c.hex))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := v.(map[any]any)
			if d, ok := got["date"].(time.Time); ok {
				if !d.Equal(time.UnixMilli(0)) {
					t.Errorf("date = %v, want the epoch", d)
				}
				delete(got, "date")
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("decoded\n %#v\nwant\n %#v", v, c.want)
			}
		})
	}
}

// Data with nothing to rewrite comes back as it is, and so does data the
// rewriter cannot follow, such as every truncation of a Java value.
func TestRewriteJavaLeavesOtherData(t *testing.T) {
	var inputs [][]byte
	for _, v := range []any{
		"java.util.LinkedHashMap", // a string, not a type
		map[string]any{"java.util.TreeMap": nil, "l": []any{int64(1), "x"}},
		Throw("java.util.ConcurrentModificationException", "boom"),
		Fields{Class: "java.util.Thing", Values: map[string]any{"m": map[string]any{"a": nil}}},
	} {
		b, err := encode(v)
		if err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, b)
	}
	for _, h := range []string{javaNestedMaps, javaMixedMaps, javaOrderEmptyLines, javaOrders} {
		b := mustHex(t, h)
		for n := range len(b) {
			inputs = append(inputs, b[:n])
		}
	}
	for _, in := range inputs {
		if out := rewriteJava(in); !bytes.Equal(out, in) {
			t.Errorf("rewriteJava(% x)\n = % x, want it unchanged", in, out)
		}
	}
}

// FuzzRewriteJava: the rewriter never panics, and what it writes has
// nothing left to rewrite.
func FuzzRewriteJava(f *testing.F) {
	for _, h := range []string{javaNestedMaps, javaMixedMaps, javaOrderEmptyLines, javaOrders} {
		f.Add(mustHex(f, h))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		once := rewriteJava(data)
		if twice := rewriteJava(once); !bytes.Equal(twice, once) {
			t.Errorf("rewriteJava(% x) = % x, rewritten again to % x", data, once, twice)
		}
	})
}

// rewriteJava is prepare for data that may be malformed: such data comes
// back unchanged.
func rewriteJava(data []byte) []byte {
	out, err := prepare(data)
	if err != nil {
		return data
	}
	return out
}

// TestDecodeRefusesBombs: data that announces more than it holds, or nests
// without end, is refused before dubbo-go-hessian2 sees it. The old decode
// handed the 21-byte class definition to the decoder, which allocated 18 GB
// for its 1,229,539,657 field names before it found the data too short.
func TestDecodeRefusesBombs(t *testing.T) {
	deep := bytes.Repeat([]byte{'W'}, 100_000) // lists in lists, never ended
	for name, in := range map[string][]byte{
		"class of a billion fields": []byte("CIIIIIIIIIIIIIIIIIIII"),
		"class of 2^31-1 fields":    {'C', 0x01, 'P', 'I', 0x7f, 0xff, 0xff, 0xff, 0x01, 'a'},
		"typed list of 2^31-1":      append([]byte("V\x04list"), 'I', 0x7f, 0xff, 0xff, 0xff, 'N'),
		"untyped list of 2^31-1":    {'X', 'I', 0x7f, 0xff, 0xff, 0xff, 'N'},
		"nested 100,000 deep":       deep,
	} {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			v, err := decode(in)
			runtime.ReadMemStats(&after)
			if err == nil || !errors.Is(err, errMalformed) {
				t.Errorf("decode = %v, %v; want the malformed-value error", v, err)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
				t.Errorf("decode allocated %d bytes for %d bytes of input", grew, len(in))
			}
			t.Log(err)
		})
	}
}
