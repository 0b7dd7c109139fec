package strategy

import (
	"bytes"
	"testing"
)

// Model outputs are outside input: the helpers strategies read them with
// must never panic, and Canonical must be stable.
func FuzzOutputHelpers(f *testing.F) {
	for _, s := range []string{`{"prediction": 1.5}`, `{"probabilities": [0.1, 0.9]}`, `{"confidence": "x"}`, `[1,2]`, `"s"`, `nul`, ``, `{"a":{"b":[1e308,-0]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		c := Canonical(out)
		if !bytes.Equal(Canonical(c), c) {
			t.Fatalf("Canonical is not idempotent on %q: %q then %q", out, c, Canonical(c))
		}
		Number(out, "prediction")
		Number(out, "")
		Confidence(out)
		Field(out, "label")
	})
}

func FuzzParams(f *testing.F) {
	f.Add("delay", "15ms")
	f.Add("max", "-1")
	f.Add("threshold", "NaN")
	f.Fuzz(func(t *testing.T, k, v string) {
		for _, name := range Strategies() {
			if fac, ok := Lookup(name); ok {
				func() {
					defer func() { recover() }() // test-only factories may panic
					fac(map[string]string{k: v})
				}()
			}
		}
	})
}
