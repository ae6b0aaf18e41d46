package hessian

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"unicode"
	"unicode/utf8"
)

// prepare walks the hessian2 value at the start of data before the
// decoder is given it, and refuses what the decoder must not see: a count
// (of a class's fields, of a list's values) larger than the bytes left,
// which dubbo-go-hessian2 v1.13.2 allocates before reading anything (21
// bytes of a class definition ask it for 18 GB), nesting deeper than
// maxDepth, and anything else that is not hessian2. Bytes after the value
// are left alone. It also rewrites, where dubbo-go-hessian2 would decode
// what Java sent into something else:
//
//   - Java writes a Map other than a HashMap (a LinkedHashMap, a TreeMap)
//     as a typed map: 'M', the class name, entries, 'Z'. The decoder drops
//     every entry of a typed map whose value is null, while it keeps them
//     in an untyped map ('H'), so typed maps of java.util classes become
//     untyped ones.
//   - Java writes an empty ArrayList as an untyped list, which the decoder
//     stores in a typed slice field of a POJO as nil. In a field of a POJO
//     registered with RegisterPOJO whose type is a slice of string, int32,
//     int64, float64, bool or a pointer to a registered POJO, the empty
//     list becomes an empty typed list of that element type, which the
//     decoder keeps as an empty slice.
//
// Dropping a map's class name or adding a list's type changes the numbers
// of the types after it, so type references are renumbered. prepare
// returns data itself when there is nothing to rewrite.
func prepare(data []byte) ([]byte, error) {
	r := &javaRewriter{in: data}
	if err := r.value(); err != nil {
		return nil, fmt.Errorf("%w (at byte %d of %d)", err, r.pos, len(data))
	}
	if r.out == nil {
		return data, nil
	}
	return append(r.out, data[r.copied:]...), nil
}

var errMalformed = errors.New("hessian2: malformed value")

// maxDepth bounds the nesting the rewriter follows (the decoder's own
// limit is the stack).
const maxDepth = 512

// javaRewriter walks one hessian2 value and copies it to out with the
// rewrites; out stays nil until the first one.
type javaRewriter struct {
	in     []byte
	pos    int
	out    []byte
	copied int // in[:copied] is in out already

	types    []int          // per type defined in in: its number in out, or -1 if dropped
	outTypes map[string]int // type name -> its number in out
	classes  []classDef     // the class definitions, in order
	depth    int
}

type classDef struct {
	name   string
	fields []string
}

// replace puts with in place of in[from:to].
func (r *javaRewriter) replace(from, to int, with ...byte) {
	r.out = append(r.out, r.in[r.copied:from]...)
	r.out = append(r.out, with...)
	r.copied = to
}

func (r *javaRewriter) byte() (byte, error) {
	if r.pos >= len(r.in) {
		return 0, errMalformed
	}
	b := r.in[r.pos]
	r.pos++
	return b, nil
}

func (r *javaRewriter) skip(n int) error {
	if n < 0 || n > len(r.in)-r.pos {
		return errMalformed
	}
	r.pos += n
	return nil
}

// value walks the value at pos.
func (r *javaRewriter) value() error {
	if r.depth++; r.depth > maxDepth {
		return fmt.Errorf("%w: nested deeper than %d", errMalformed, maxDepth)
	}
	defer func() { r.depth-- }()
	tag, err := r.byte()
	if err != nil {
		return err
	}
	switch {
	case tag == 'N' || tag == 'T' || tag == 'F' || tag == 0x5b || tag == 0x5c,
		tag >= 0x80 && tag <= 0xbf, tag >= 0xd8 && tag <= 0xef: // one-octet ints and longs
		return nil
	case tag >= 0xc0 && tag <= 0xcf, tag >= 0xf0, tag == 0x5d:
		return r.skip(1)
	case tag >= 0xd0 && tag <= 0xd7, tag >= 0x38 && tag <= 0x3f, tag == 0x5e:
		return r.skip(2)
	case tag == 'I' || tag == 'Y' || tag == 0x5f || tag == 'K':
		return r.skip(4)
	case tag == 'L' || tag == 'D' || tag == 'J':
		return r.skip(8)
	case tag <= 0x1f, tag >= 0x30 && tag <= 0x33, tag == 'S' || tag == 'R':
		r.pos--
		_, err := r.string()
		return err
	case tag >= 0x20 && tag <= 0x2f, tag >= 0x34 && tag <= 0x37, tag == 'A' || tag == 'B':
		r.pos--
		return r.binary()
	case tag == 'C':
		if err := r.classDef(); err != nil {
			return err
		}
		return r.value() // the object the definition comes before
	case tag == 'O':
		c, err := r.int()
		if err != nil {
			return err
		}
		return r.object(c)
	case tag >= 0x60 && tag <= 0x6f:
		return r.object(int(tag - 0x60))
	case tag == 'Q':
		_, err := r.int()
		return err
	case tag == 'H':
		return r.untilEnd() // keys and values
	case tag == 'M':
		if err := r.typ(r.pos - 1); err != nil {
			return err
		}
		return r.untilEnd() // keys and values
	case tag == 'U':
		if err := r.typ(-1); err != nil {
			return err
		}
		return r.untilEnd()
	case tag == 'V':
		if err := r.typ(-1); err != nil {
			return err
		}
		n, err := r.int()
		if err != nil {
			return err
		}
		return r.values(n)
	case tag >= 0x70 && tag <= 0x77:
		if err := r.typ(-1); err != nil {
			return err
		}
		return r.values(int(tag - 0x70))
	case tag == 'W':
		return r.untilEnd()
	case tag == 'X':
		n, err := r.int()
		if err != nil {
			return err
		}
		return r.values(n)
	case tag >= 0x78 && tag <= 0x7f:
		return r.values(int(tag - 0x78))
	}
	return errMalformed
}

func (r *javaRewriter) values(n int) error {
	if n < 0 || n > len(r.in)-r.pos { // every value takes a byte at least
		return fmt.Errorf("%w: a list of %d values in %d bytes", errMalformed, n, len(r.in)-r.pos)
	}
	for range n {
		if err := r.value(); err != nil {
			return err
		}
	}
	return nil
}

// untilEnd walks values up to and past 'Z' (a list's values, or a map's
// keys and values).
func (r *javaRewriter) untilEnd() error {
	for {
		if r.pos >= len(r.in) {
			return errMalformed
		}
		if r.in[r.pos] == 'Z' {
			r.pos++
			return nil
		}
		if err := r.value(); err != nil {
			return err
		}
	}
}

func (r *javaRewriter) classDef() error {
	name, err := r.string()
	if err != nil {
		return err
	}
	n, err := r.int()
	if err != nil {
		return err
	}
	if n < 0 || n > len(r.in)-r.pos { // every field name takes a byte at least
		return fmt.Errorf("%w: class %.64q of %d fields in %d bytes", errMalformed, name, n, len(r.in)-r.pos)
	}
	c := classDef{name: name, fields: make([]string, n)}
	for i := range n {
		if c.fields[i], err = r.string(); err != nil {
			return err
		}
	}
	r.classes = append(r.classes, c)
	return nil
}

// object walks the field values of an instance of class c, and gives an
// empty untyped list in a typed slice field of a registered POJO its type.
func (r *javaRewriter) object(c int) error {
	if c < 0 || c >= len(r.classes) {
		return errMalformed
	}
	cls := r.classes[c]
	st, _ := pojoStructs.Load(cls.name)
	for _, f := range cls.fields {
		if st != nil {
			if n := r.emptyUntypedList(); n > 0 {
				if typ, ok := listTypeOf(st.(reflect.Type), f); ok {
					r.typedEmptyList(r.pos, r.pos+n, typ)
					r.pos += n
					continue
				}
			}
		}
		if err := r.value(); err != nil {
			return err
		}
	}
	return nil
}

// emptyUntypedList returns the length of the empty untyped list at pos, or
// 0 if there is none: Java writes an empty ArrayList as x78.
func (r *javaRewriter) emptyUntypedList() int {
	switch rest := r.in[r.pos:]; {
	case len(rest) >= 1 && rest[0] == 0x78:
		return 1
	case len(rest) >= 2 && (rest[0] == 'X' && rest[1] == 0x90 || rest[0] == 'W' && rest[1] == 'Z'):
		return 2
	}
	return 0
}

// typedEmptyList puts an empty list of type typ (x70 and the type) in place
// of in[from:to].
func (r *javaRewriter) typedEmptyList(from, to int, typ string) {
	if ref, seen := r.outTypes[typ]; seen {
		r.replace(from, to, append([]byte{0x70}, encodeInt(ref)...)...)
		return
	}
	r.newType(typ)
	r.replace(from, to, append([]byte{0x70}, encodeString(typ)...)...)
}

// newType numbers a type that out defines.
func (r *javaRewriter) newType(name string) int {
	if r.outTypes == nil {
		r.outTypes = map[string]int{}
	}
	n := len(r.outTypes)
	r.outTypes[name] = n
	return n
}

// listTypeOf returns the hessian2 list type that dubbo-go-hessian2 decodes
// into the Go type of struct st's field that Java names field (matched as
// the decoder matches it: the hessian tag, the name, its lower camel case
// or lower case form), when that type is a slice it knows.
func listTypeOf(st reflect.Type, field string) (string, bool) {
	for i := range st.NumField() {
		f := st.Field(i)
		if !javaNameOf(f, field) {
			continue
		}
		if f.Type.Kind() != reflect.Slice {
			return "", false
		}
		switch e := f.Type.Elem(); e {
		case reflect.TypeFor[string]():
			return "[string", true
		case reflect.TypeFor[int32]():
			return "[int", true
		case reflect.TypeFor[int64]():
			return "[long", true
		case reflect.TypeFor[float64]():
			return "[double", true
		case reflect.TypeFor[bool]():
			return "[boolean", true
		default:
			if e.Kind() != reflect.Pointer || !e.Implements(pojoType) {
				return "", false
			}
			class := reflect.New(e.Elem()).Interface().(POJO).JavaClassName()
			if t, ok := pojoStructs.Load(class); !ok || t != e.Elem() || !isASCII(class) {
				return "", false
			}
			return "[" + class, true
		}
	}
	return "", false
}

// javaNameOf reports whether Java's field name names the Go field f.
func javaNameOf(f reflect.StructField, name string) bool {
	if tag, ok := f.Tag.Lookup("hessian"); ok && tag == name {
		return true
	}
	return f.Name == name || lowerFirst(f.Name) == name || strings.ToLower(f.Name) == name
}

func lowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToLower(r)) + s[n:]
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// encodeString is the hessian2 encoding of an ASCII string.
func encodeString(s string) []byte {
	switch n := len(s); {
	case n <= 31:
		return append([]byte{byte(n)}, s...)
	case n <= 1023:
		return append([]byte{byte(0x30 + n>>8), byte(n)}, s...)
	default:
		return append([]byte{'S', byte(n >> 8), byte(n)}, s...)
	}
}

// typ walks the type of a list, or of a map whose 'M' is at mapTag (-1 for
// a list). A map of a java.util class becomes untyped: 'M' and its type are
// replaced by 'H'. A reference to a type keeps pointing at it.
func (r *javaRewriter) typ(mapTag int) error {
	start := r.pos
	if r.pos >= len(r.in) {
		return errMalformed
	}
	if isIntTag(r.in[r.pos]) {
		ref, err := r.int()
		if err != nil {
			return err
		}
		if ref < 0 || ref >= len(r.types) {
			return errMalformed
		}
		switch n := r.types[ref]; {
		case n < 0 && mapTag < 0: // a list typed as a java.util map class
			return errMalformed
		case n < 0:
			r.replace(mapTag, r.pos, 'H')
		case n != ref:
			r.replace(start, r.pos, encodeInt(n)...)
		}
		return nil
	}
	name, err := r.string()
	if err != nil {
		return err
	}
	switch n, seen := r.outTypes[name]; {
	case mapTag >= 0 && isJavaUtilMap(name):
		r.types = append(r.types, -1)
		r.replace(mapTag, r.pos, 'H')
	case seen: // a type out defined already; the decoder keeps its number
		r.types = append(r.types, n)
	default:
		r.types = append(r.types, r.newType(name))
	}
	return nil
}

// isJavaUtilMap reports whether a typed map's class is a java.util map
// (LinkedHashMap, TreeMap, concurrent.ConcurrentHashMap, ...), which
// decodes as a map[any]any either way.
func isJavaUtilMap(class string) bool {
	return strings.HasPrefix(class, "java.util.") && strings.Contains(class, "Map")
}

func isIntTag(b byte) bool { return b >= 0x80 && b <= 0xd7 || b == 'I' }

// int reads a hessian2 int.
func (r *javaRewriter) int() (int, error) {
	b, err := r.byte()
	if err != nil {
		return 0, err
	}
	switch {
	case b >= 0x80 && b <= 0xbf:
		return int(b) - 0x90, nil
	case b >= 0xc0 && b <= 0xcf:
		if err := r.skip(1); err != nil {
			return 0, err
		}
		return (int(b)-0xc8)<<8 | int(r.in[r.pos-1]), nil
	case b >= 0xd0 && b <= 0xd7:
		if err := r.skip(2); err != nil {
			return 0, err
		}
		return (int(b)-0xd4)<<16 | int(r.in[r.pos-2])<<8 | int(r.in[r.pos-1]), nil
	case b == 'I':
		if err := r.skip(4); err != nil {
			return 0, err
		}
		p := r.in[r.pos-4:]
		return int(int32(uint32(p[0])<<24 | uint32(p[1])<<16 | uint32(p[2])<<8 | uint32(p[3]))), nil
	}
	return 0, errMalformed
}

// encodeInt is the shortest hessian2 encoding of a type number n >= 0.
func encodeInt(n int) []byte {
	switch {
	case n <= 47:
		return []byte{byte(0x90 + n)}
	case n <= 2047:
		return []byte{byte(0xc8 + n>>8), byte(n)}
	case n <= 262143:
		return []byte{byte(0xd4 + n>>16), byte(n >> 8), byte(n)}
	}
	return []byte{'I', byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

// string reads a hessian2 string (all its chunks) and returns its bytes.
func (r *javaRewriter) string() (string, error) {
	var s []byte
	for {
		tag, err := r.byte()
		if err != nil {
			return "", err
		}
		var n int
		final := true
		switch {
		case tag <= 0x1f:
			n = int(tag)
		case tag >= 0x30 && tag <= 0x33:
			b, err := r.byte()
			if err != nil {
				return "", err
			}
			n = int(tag-0x30)<<8 | int(b)
		case tag == 'S' || tag == 'R':
			if err := r.skip(2); err != nil {
				return "", err
			}
			n = int(r.in[r.pos-2])<<8 | int(r.in[r.pos-1])
			final = tag == 'S'
		default:
			return "", errMalformed
		}
		start := r.pos
		if err := r.chars(n); err != nil {
			return "", err
		}
		s = append(s, r.in[start:r.pos]...)
		if final {
			return string(s), nil
		}
	}
}

// chars skips n UTF-16 units of hessian2's UTF-8: a character above the
// BMP is a surrogate pair, as two 3-byte sequences (Java) or, counted as
// two, one 4-byte sequence.
func (r *javaRewriter) chars(n int) error {
	for n > 0 {
		b, err := r.byte()
		if err != nil {
			return err
		}
		size, units := 1, 1
		switch {
		case b < 0x80:
		case b&0xe0 == 0xc0:
			size = 2
		case b&0xf0 == 0xe0:
			size = 3
		case b&0xf8 == 0xf0:
			size, units = 4, 2
		default:
			return errMalformed
		}
		if err := r.skip(size - 1); err != nil {
			return err
		}
		n -= units
	}
	if n < 0 {
		return errMalformed
	}
	return nil
}

// binary skips a hessian2 binary value (all its chunks).
func (r *javaRewriter) binary() error {
	for {
		tag, err := r.byte()
		if err != nil {
			return err
		}
		switch {
		case tag >= 0x20 && tag <= 0x2f:
			return r.skip(int(tag - 0x20))
		case tag >= 0x34 && tag <= 0x37:
			b, err := r.byte()
			if err != nil {
				return err
			}
			return r.skip(int(tag-0x34)<<8 | int(b))
		case tag == 'A' || tag == 'B':
			if err := r.skip(2); err != nil {
				return err
			}
			if err := r.skip(int(r.in[r.pos-2])<<8 | int(r.in[r.pos-1])); err != nil {
				return err
			}
			if tag == 'B' {
				return nil
			}
		default:
			return errMalformed
		}
	}
}
