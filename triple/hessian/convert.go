package hessian

import (
	"fmt"
	"math"
	"reflect"
)

// assign stores a decoded hessian2 value v in the variable out points to,
// converting what hessian2 returns for Java types (int32 for int, pointers
// to POJOs, map[any]any and []any for collections) to out's Go type.
func assign(v any, out any) error {
	dst := reflect.ValueOf(out)
	if dst.Kind() != reflect.Pointer || dst.IsNil() {
		return fmt.Errorf("hessian: result must go into a non-nil pointer, not %T", out)
	}
	return set(dst.Elem(), v)
}

func set(dst reflect.Value, v any) error {
	if v == nil {
		dst.SetZero()
		return nil
	}
	src := reflect.ValueOf(v)
	if err := setValue(dst, src); err != nil {
		return fmt.Errorf("hessian: cannot store %T in %v: %w", v, dst.Type(), err)
	}
	return nil
}

func setValue(dst, src reflect.Value) error {
	for src.Kind() == reflect.Interface && !src.IsNil() {
		src = src.Elem()
	}
	if !src.IsValid() || (src.Kind() == reflect.Pointer || src.Kind() == reflect.Map || src.Kind() == reflect.Slice || src.Kind() == reflect.Interface) && src.IsNil() {
		dst.SetZero()
		return nil
	}
	dt := dst.Type()
	switch {
	case src.Type().AssignableTo(dt):
		dst.Set(src)
		return nil
	case src.Kind() == reflect.Pointer && src.Elem().Type().AssignableTo(dt):
		dst.Set(src.Elem())
		return nil
	case dt.Kind() == reflect.Pointer:
		p := reflect.New(dt.Elem())
		if err := setValue(p.Elem(), src); err != nil {
			return err
		}
		dst.Set(p)
		return nil
	}
	switch dt.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		if isNumber(src.Kind()) {
			return setNumber(dst, src)
		}
	case reflect.Map:
		if src.Kind() != reflect.Map {
			break
		}
		m := reflect.MakeMapWithSize(dt, src.Len())
		it := src.MapRange()
		for it.Next() {
			k, e := reflect.New(dt.Key()).Elem(), reflect.New(dt.Elem()).Elem()
			if err := setValue(k, it.Key()); err != nil {
				return err
			}
			if err := setValue(e, it.Value()); err != nil {
				return err
			}
			m.SetMapIndex(k, e)
		}
		dst.Set(m)
		return nil
	case reflect.Slice:
		if src.Kind() != reflect.Slice && src.Kind() != reflect.Array {
			break
		}
		s := reflect.MakeSlice(dt, src.Len(), src.Len())
		for i := range src.Len() {
			if err := setValue(s.Index(i), src.Index(i)); err != nil {
				return err
			}
		}
		dst.Set(s)
		return nil
	}
	return fmt.Errorf("%v does not convert to %v", src.Type(), dt)
}

func isNumber(k reflect.Kind) bool {
	return k >= reflect.Int && k <= reflect.Float64
}

// setNumber stores the number src in the number dst when its value fits:
// a Java long too large for an int32 parameter, a negative number for an
// unsigned one, or a double for an integer one is an error rather than a
// different number.
func setNumber(dst, src reflect.Value) error {
	overflow := func() error {
		return fmt.Errorf("%v %v overflows %v; declare the parameter with the Go type of the Java one (long: int64)", src.Type(), src, dst.Type())
	}
	sk, dk := src.Kind(), dst.Kind()
	switch {
	case isFloat(dk):
		var f float64
		switch {
		case isFloat(sk):
			f = src.Float()
		case isUint(sk):
			f = float64(src.Uint())
		default:
			f = float64(src.Int())
		}
		if dst.OverflowFloat(f) {
			return overflow()
		}
		dst.SetFloat(f)
	case isFloat(sk):
		return fmt.Errorf("%v %v does not convert to %v: a Java double or float arrives as float64", src.Type(), src, dst.Type())
	case isUint(dk):
		var u uint64
		switch {
		case isUint(sk):
			u = src.Uint()
		case src.Int() >= 0:
			u = uint64(src.Int())
		default:
			return overflow()
		}
		if dst.OverflowUint(u) {
			return overflow()
		}
		dst.SetUint(u)
	default:
		var i int64
		switch {
		case !isUint(sk):
			i = src.Int()
		case src.Uint() <= math.MaxInt64:
			i = int64(src.Uint())
		default:
			return overflow()
		}
		if dst.OverflowInt(i) {
			return overflow()
		}
		dst.SetInt(i)
	}
	return nil
}

func isFloat(k reflect.Kind) bool { return k == reflect.Float32 || k == reflect.Float64 }

func isUint(k reflect.Kind) bool { return k >= reflect.Uint && k <= reflect.Uintptr }
