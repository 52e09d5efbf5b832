package descriptor

import (
	"encoding"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// decodeInto fills v (a pointer) from a schema-valid tree, following json
// struct tags and calling UnmarshalText for string values of types that
// have it. A failure means the schema and the Go types disagree.
func decodeInto(n *node, v any) error {
	if err := decodeValue(n, reflect.ValueOf(v).Elem()); err != nil {
		return fmt.Errorf("descriptor: internal error: a schema-valid document did not decode: %w", err)
	}
	return nil
}

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

func decodeValue(n *node, v reflect.Value) error {
	if v.Kind() == reflect.Pointer {
		if n.kind == kindNull {
			return nil
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return decodeValue(n, v.Elem())
	}
	if n.kind == kindString && reflect.PointerTo(v.Type()).Implements(textUnmarshalerType) {
		return v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.str))
	}
	switch v.Kind() {
	case reflect.String:
		if n.kind != kindString {
			return fmt.Errorf("%s into string", n.kind)
		}
		v.SetString(n.str)
	case reflect.Bool:
		if n.kind != kindBool {
			return fmt.Errorf("%s into bool", n.kind)
		}
		v.SetBool(n.boolean)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return decodeNumber(n, v)
	case reflect.Slice:
		return decodeSlice(n, v)
	case reflect.Map:
		return decodeMap(n, v)
	case reflect.Struct:
		return decodeStruct(n, v)
	default:
		return fmt.Errorf("cannot decode into %s", v.Type())
	}
	return nil
}

// decodeNumber sets an integer or a float field from a number, refusing
// one its type cannot hold exactly.
func decodeNumber(n *node, v reflect.Value) error {
	f, err := numberValue(n)
	if err != nil {
		return err
	}
	switch v.Kind() {
	case reflect.Float32, reflect.Float64:
		v.SetFloat(f)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u := uint64(f)
		if f < 0 || float64(u) != f || v.OverflowUint(u) {
			return fmt.Errorf("%s does not fit %s", n.str, v.Type())
		}
		v.SetUint(u)
	default:
		i := int64(f)
		if float64(i) != f || v.OverflowInt(i) {
			return fmt.Errorf("%s does not fit %s", n.str, v.Type())
		}
		v.SetInt(i)
	}
	return nil
}

func decodeSlice(n *node, v reflect.Value) error {
	if n.kind != kindArray {
		return fmt.Errorf("%s into %s", n.kind, v.Type())
	}
	s := reflect.MakeSlice(v.Type(), len(n.items), len(n.items))
	for i, it := range n.items {
		if err := decodeValue(it, s.Index(i)); err != nil {
			return err
		}
	}
	v.Set(s)
	return nil
}

func decodeMap(n *node, v reflect.Value) error {
	if n.kind != kindObject || v.Type().Key().Kind() != reflect.String {
		return fmt.Errorf("%s into %s", n.kind, v.Type())
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.members))
	for _, mb := range n.members {
		e := reflect.New(v.Type().Elem()).Elem()
		if err := decodeValue(mb.val, e); err != nil {
			return fmt.Errorf("%s: %w", mb.name, err)
		}
		m.SetMapIndex(reflect.ValueOf(mb.name).Convert(v.Type().Key()), e)
	}
	v.Set(m)
	return nil
}

func decodeStruct(n *node, v reflect.Value) error {
	if n.kind != kindObject {
		return fmt.Errorf("%s into %s", n.kind, v.Type())
	}
	fields := structFields(v.Type())
	for _, mb := range n.members {
		idx, ok := fields[mb.name]
		if !ok {
			return fmt.Errorf("%s has no field %q", v.Type(), mb.name)
		}
		if err := decodeValue(mb.val, v.Field(idx)); err != nil {
			return fmt.Errorf("%s: %w", mb.name, err)
		}
	}
	return nil
}

func numberValue(n *node) (float64, error) {
	if n.kind != kindNumber {
		return 0, fmt.Errorf("%s where a number belongs", n.kind)
	}
	return strconv.ParseFloat(n.str, 64)
}

var structFieldCache sync.Map // reflect.Type -> map[string]int

// structFields maps json names to field indexes.
func structFields(t reflect.Type) map[string]int {
	if m, ok := structFieldCache.Load(t); ok {
		return m.(map[string]int)
	}
	m := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.IsExported() && name != "" && name != "-" {
			m[name] = i
		}
	}
	structFieldCache.Store(t, m)
	return m
}
