package hessian

import "testing"

// FuzzDecodeValue feeds arbitrary bytes to what a server does with each
// argument of a wrapper request and a client with a result: decode the
// hessian2 value, read it as an exception, convert it to Go types. Nothing
// may panic. (The envelope itself is fuzzed by triple's FuzzWrapperDecode.)
func FuzzDecodeValue(f *testing.F) {
	s, _ := encode("Ada")
	ex, _ := encode(Throw("org.example.GreetingException", "boom"))
	m, _ := encode(map[string]any{"a": int32(1), "b": []any{"x", int64(2)}})
	for _, seed := range [][]byte{s, ex, m, {'C', 0x05, 'a', 'b'}, {0x58, 0x7f, 0xff, 0xff, 0xff}, []byte("CIIIIIIIIIIIIIIIIIIII")} {
		f.Add(seed)
	}
	f.Fuzz(func(_ *testing.T, data []byte) {
		v, err := decode(data)
		if err != nil {
			return
		}
		_ = exceptionFrom(v, data)
		var s string
		_ = assign(v, &s)
		var m map[string]string
		_ = assign(v, &m)
		var p *struct{ Name string }
		_ = assign(v, &p)
	})
}
