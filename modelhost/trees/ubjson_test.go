package trees_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/manta-ml/manta/modelhost/trees"
)

// toUBJ encodes a JSON document as UBJSON the way XGBoost writes it:
// objects with int64-length keys, strings 'S', numbers in arrays of numbers
// as typed counted arrays (float32 'd' when any is fractional, else int32
// 'l'), other arrays plain, other numbers float64 'D'.
func toUBJ(t testing.TB, doc string) []byte {
	t.Helper()
	var v any
	d := json.NewDecoder(strings.NewReader(doc))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	var enc func(v any)
	str := func(s string) {
		b.WriteByte('L')
		binary.Write(&b, binary.BigEndian, int64(len(s)))
		b.WriteString(s)
	}
	enc = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			b.WriteByte('{')
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				str(k)
				enc(v[k])
			}
			b.WriteByte('}')
		case []any:
			nums, ints := len(v) > 0, true
			for _, e := range v {
				n, ok := e.(json.Number)
				nums = nums && ok
				if ok {
					if _, err := n.Int64(); err != nil {
						ints = false
					}
				}
			}
			if !nums {
				b.WriteByte('[')
				for _, e := range v {
					enc(e)
				}
				b.WriteByte(']')
				return
			}
			typ := byte('d')
			if ints {
				typ = 'l'
			}
			b.Write([]byte{'[', '$', typ, '#', 'L'})
			binary.Write(&b, binary.BigEndian, int64(len(v)))
			for _, e := range v {
				f, _ := e.(json.Number).Float64()
				if ints {
					binary.Write(&b, binary.BigEndian, int32(f))
				} else {
					binary.Write(&b, binary.BigEndian, math.Float32bits(float32(f)))
				}
			}
		case string:
			b.WriteByte('S')
			str(v)
		case json.Number:
			f, _ := v.Float64()
			b.WriteByte('D')
			binary.Write(&b, binary.BigEndian, math.Float64bits(f))
		case bool:
			if v {
				b.WriteByte('T')
			} else {
				b.WriteByte('F')
			}
		case nil:
			b.WriteByte('Z')
		}
	}
	enc(v)
	return b.Bytes()
}

// TestUBJSON: a model saved as UBJSON answers as the same model in JSON
// (TestXGBoostOracle checks XGBoost's own .ubj files), and malformed
// UBJSON is an error, above all one whose counts promise more than the
// file holds.
func TestUBJSON(t *testing.T) {
	for _, doc := range []string{xgSmall, xgMulti} {
		mj, err := trees.ParseXGBoost([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		mu, err := trees.ParseXGBoost(toUBJ(t, doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range [][]float64{{0.1, 3}, {0.7, 1}, {math.NaN(), 2}, {-4, 0}} {
			x = x[:mj.NumFeatures()]
			a, b := predict(t, mj, row(x))[0], predict(t, mu, row(x))[0]
			if string(a.Payload) != string(b.Payload) {
				t.Fatalf("%v: JSON model %s, UBJSON %s", x, a.Payload, b.Payload)
			}
		}
	}
	good := toUBJ(t, xgSmall)
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"truncated", good[:len(good)/2], "end of file"},
		{"huge count", []byte("{L\x00\x00\x00\x00\x00\x00\x00\x01a[$d#L\x7f\xff\xff\xff\xff\xff\xff\xff}"), "length"},
		{"count above the bytes", []byte("{L\x00\x00\x00\x00\x00\x00\x00\x01a[$d#i\x02\x00\x00\x00\x00}"), "count 2"},
		{"zero-byte elements", []byte("{L\x00\x00\x00\x00\x00\x00\x00\x01a[$Z#L\x7f\xff\xff\xff\xff\xff\xff\xff}"), "no bytes per element"},
		{"negative length", []byte("{L\xff\xff\xff\xff\xff\xff\xff\xffa}"), "length -1"},
		{"deep", []byte("{i\x01a" + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "}"), "nested deeper"},
		{"NaN", []byte("{i\x01aD\x7f\xf8\x00\x00\x00\x00\x00\x00}"), "no such number"},
		{"bad marker", []byte("{i\x01aX}"), `marker 'X'`},
		{"trailing", append(append([]byte{}, good...), 'Z'), "after the document"},
	} {
		if _, err := trees.ParseXGBoost(tc.b); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}
