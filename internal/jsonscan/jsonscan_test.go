package jsonscan

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestParseFloats(t *testing.T) {
	good := map[string][]float64{
		`[]`:                               {},
		` [ ] `:                            {},
		`[0]`:                              {0},
		`[-0]`:                             {math.Copysign(0, -1)},
		`[1,2.5,-3e2,4E-1]`:                {1, 2.5, -300, 0.4},
		`[0.1,0.2,0.30000000000000004]`:    {0.1, 0.2, 0.30000000000000004},
		`[123456789012345678901234567890]`: {123456789012345678901234567890},
		`[1.7976931348623157e308, 5e-324, 1e-400]`: {math.MaxFloat64, 5e-324, 0},
		"[\t1 ,\n2\r]":                    {1, 2},
		`[0.000000000000000000000000001]`: {1e-27},
		`[9007199254740993]`:              {9007199254740993},
	}
	for in, want := range good {
		got, ok := ParseFloats([]byte(in), nil)
		if !ok || len(got) != len(want) {
			t.Errorf("ParseFloats(%s) = %v, %v; want %v", in, got, ok, want)
			continue
		}
		for i := range want {
			if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
				t.Errorf("ParseFloats(%s)[%d] = %v, want %v", in, i, got[i], want[i])
			}
		}
	}
	for _, in := range []string{``, `[`, `]`, `[1,]`, `[,1]`, `[1 2]`, `[+1]`, `[.5]`, `[1.]`, `[1e]`, `[01]`,
		`[-]`, `[null]`, `[true]`, `["1"]`, `[1e400]`, `[[1]]`, `[1] 2`, `{}`, `[Infinity]`, `[0x10]`, `[1_000]`} {
		if got, ok := ParseFloats([]byte(in), nil); ok {
			t.Errorf("ParseFloats(%s) = %v, want failure", in, got)
		}
	}
}

// FuzzParseFloats checks the hand-rolled scanner against encoding/json:
// whatever it accepts, encoding/json accepts with bit-identical values, and
// whatever encoding/json accepts into a []float64 it accepts too, nulls
// aside (encoding/json reads a null element as 0; Manta refuses it).
func FuzzParseFloats(f *testing.F) {
	for _, s := range []string{`[1,2,3]`, `[-0.5e-3, 1E+9]`, `[]`, `[1e400]`, `[null]`, `[0.1,1e22,1e23,9007199254740993]`,
		`[123456789012345678901234567890e-50]`, `[4.9406564584124654e-324]`, ` [ 1 ] `, `[1,`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := ParseFloats(b, nil)
		var want []float64
		jerr := json.Unmarshal(b, &want)
		if ok {
			if jerr != nil {
				t.Fatalf("scanner accepted %q, encoding/json: %v", b, jerr)
			}
			if len(got) != len(want) {
				t.Fatalf("%q: %d values, encoding/json %d", b, len(got), len(want))
			}
			for i := range got {
				if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
					t.Fatalf("%q[%d] = %v, encoding/json %v", b, i, got[i], want[i])
				}
			}
			return
		}
		if jerr == nil && want != nil && !strings.Contains(string(b), "null") {
			t.Fatalf("scanner refused %q, encoding/json accepted %v", b, want)
		}
	})
}
