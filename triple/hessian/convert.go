package hessian

import (
	"fmt"
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
			dst.Set(src.Convert(dt))
			return nil
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
