package jsonscan

import (
	"encoding/json"
	"math"
	"testing"
)

func TestAppendFloatsNaN(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []float64 // NaN marks null
		ok   bool
	}{
		{`[]`, nil, true},
		{` [1, null ,-2.5e1]`, []float64{1, math.NaN(), -25}, true},
		{`[null]`, []float64{math.NaN()}, true},
		{`[nul]`, nil, false},
		{`[1,]`, nil, false},
		{`[1 2]`, nil, false},
		{`[1e400]`, nil, false},
		{`[1`, nil, false},
		{`nullx`, nil, false},
	} {
		got, _, ok := AppendFloatsNaN(nil, []byte(tc.in), 0)
		if ok != tc.ok {
			t.Errorf("%s: ok %v, want %v", tc.in, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.in, got, tc.want)
			continue
		}
		for k := range got {
			if got[k] != tc.want[k] && !(math.IsNaN(got[k]) && math.IsNaN(tc.want[k])) {
				t.Errorf("%s: [%d] = %v, want %v", tc.in, k, got[k], tc.want[k])
			}
		}
	}
}

// FuzzAppendFloatsNaN checks the scanner against encoding/json decoding
// into []*float64 (null = nil).
func FuzzAppendFloatsNaN(f *testing.F) {
	for _, s := range []string{`[1,null,2]`, `[]`, `[-0.0e-5, 3]`, `[null,null]`, `[1e308]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, next, ok := AppendFloatsNaN(nil, b, 0)
		ok = ok && SkipSpace(b, next) == len(b)
		var want []*float64
		err := json.Unmarshal(b, &want)
		if err == nil && want == nil {
			return // a top-level null decodes to a nil slice: not our shape
		}
		if ok != (err == nil) {
			t.Fatalf("%q: ok %v, encoding/json error %v", b, ok, err)
		}
		if !ok {
			return
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d values, encoding/json %d", b, len(got), len(want))
		}
		for k := range got {
			if want[k] == nil {
				if !math.IsNaN(got[k]) {
					t.Fatalf("%q: [%d] = %v, want NaN for null", b, k, got[k])
				}
			} else if math.Float64bits(got[k]) != math.Float64bits(*want[k]) {
				t.Fatalf("%q: [%d] = %v, encoding/json %v", b, k, got[k], *want[k])
			}
		}
	})
}
