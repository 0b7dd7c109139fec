package pyworker

import (
	"math"
	"testing"
)

func TestParseFeatures(t *testing.T) {
	tests := []struct {
		in      string
		want    []float64
		wantErr bool
	}{
		{`{"features":[1,2,3]}`, []float64{1, 2, 3}, false},
		{" {\n \"features\" : [ -1.5e3 , 0.25,0 ] } \n", []float64{-1500, 0.25, 0}, false},
		{`{"features":[]}`, []float64{}, false},
		{`{"features":[1],"id":"x"}`, []float64{1}, false},
		{`{"id":"x","features":[1e-2]}`, []float64{0.01}, false},
		{`{"feat\u0075res":[4]}`, []float64{4}, false},
		{`{"features":[1,]}`, nil, true},
		{`{"features":[01]}`, nil, true},
		{`{"features":[1.]}`, nil, true},
		{`{"features":[NaN]}`, nil, true},
		{`{"features":[1e400]}`, nil, true},
		{`{"features":["1"]}`, nil, true},
		{`{"features":null}`, nil, true},
		{`{"Features":[1]}`, nil, true},
		{`{"features":[1]} x`, nil, true},
		{`[1,2]`, nil, true},
		{``, nil, true},
	}
	for _, tt := range tests {
		got, err := parseFeatures(nil, []byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: err = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && !equalFloats(got, tt.want) {
			t.Errorf("%q: got %v, want %v", tt.in, got, tt.want)
		}
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(math.IsNaN(a[i]) && math.IsNaN(b[i])) {
			return false
		}
	}
	return true
}

// FuzzParseFeatures checks the hand-written scanner against encoding/json:
// whatever the scanner accepts, encoding/json accepts with the same values.
func FuzzParseFeatures(f *testing.F) {
	for _, s := range []string{`{"features":[1,2,3]}`, `{"features":[-0.5e-3, 1E+2]}`, `{"features":[]}`,
		`{"features":[1,]}`, `{ "features" : [ 1 ] }`, `{"features":[-]}`, `{"features":[1e]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fast, ok := scanFeatures([]float64{42}, b)
		slow, err := decodeFeatures([]float64{42}, b)
		if ok {
			if err != nil {
				t.Fatalf("scanner accepted %q, encoding/json refused: %v", b, err)
			}
			if !equalFloats(fast, slow) {
				t.Fatalf("%q: scanner %v, encoding/json %v", b, fast, slow)
			}
		} else if len(fast) != 1 {
			t.Fatalf("scanner refused %q but left %v in dst", b, fast)
		}
		if got, err2 := parseFeatures(nil, b); (err2 == nil) != (err == nil) || (err == nil && !equalFloats(got, slow[1:])) {
			t.Fatalf("parseFeatures(%q) = %v, %v; encoding/json %v, %v", b, got, err2, slow, err)
		}
	})
}
