package jobs

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestWireShowsEveryField: a job with every field of every nested row set
// writes the same JSON as a row and on the wire, so that no field the row
// gains is left out of the API, or shown under another name, by accident.
func TestWireShowsEveryField(t *testing.T) {
	var j Job
	fill(t, reflect.ValueOf(&j).Elem(), 1)
	row, err := json.Marshal(&j)
	if err != nil {
		t.Fatal(err)
	}
	wire, err := json.Marshal(j.Wire())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(row, wire) {
		t.Fatalf("the row and the wire differ:\nrow  %s\nwire %s", row, wire)
	}
	// And nothing is left at its zero value, which omitempty would hide.
	var back map[string]any
	json.Unmarshal(row, &back)
	if len(back) != reflect.TypeOf(j).NumField() {
		t.Fatalf("%d of %d fields written: %s", len(back), reflect.TypeOf(j).NumField(), row)
	}
}

// fill sets every field reachable from v to a value that is not zero.
func fill(t *testing.T, v reflect.Value, n int) {
	switch {
	case v.Type() == reflect.TypeOf(json.RawMessage(nil)):
		v.SetBytes([]byte(`{"n":1}`))
		return
	case v.Type() == reflect.TypeOf(time.Time{}):
		v.Set(reflect.ValueOf(time.Date(2026, 12, 8, 1, 2, 3, n, time.UTC)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("s")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(n + 1))
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(t, s.Index(0), n+1)
		v.Set(s)
	case reflect.Uint8:
		v.SetUint(7)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(t, p.Elem(), n+1)
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(t, v.Field(i), n+i)
			}
		}
	default:
		t.Fatalf("fill: no value for %s", v.Type())
	}
}
