package hessian

import (
	"bytes"
	"encoding/hex"
	"reflect"
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
)

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

// Data with no typed java.util map comes back as it is, and so does data
// the rewriter cannot follow, such as every truncation of a Java value.
func TestUntypeJavaMapsLeavesOtherData(t *testing.T) {
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
	for _, h := range []string{javaNestedMaps, javaMixedMaps} {
		b := mustHex(t, h)
		for n := range len(b) {
			inputs = append(inputs, b[:n])
		}
	}
	for _, in := range inputs {
		if out := untypeJavaMaps(in); !bytes.Equal(out, in) {
			t.Errorf("untypeJavaMaps(% x)\n = % x, want it unchanged", in, out)
		}
	}
}

// FuzzUntypeJavaMaps: the rewriter never panics, and a rewrite only
// shortens the data ('M' and a type become 'H'; a type reference gets a
// smaller number).
func FuzzUntypeJavaMaps(f *testing.F) {
	f.Add(mustHex(f, javaNestedMaps))
	f.Add(mustHex(f, javaMixedMaps))
	f.Fuzz(func(t *testing.T, data []byte) {
		if out := untypeJavaMaps(data); len(out) > len(data) {
			t.Errorf("untypeJavaMaps(% x) = % x, longer than its input", data, out)
		}
	})
}
