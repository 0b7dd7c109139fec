package quality

import (
	"bytes"

	"github.com/manta-ml/manta/internal/jsonscan"
)

var (
	keyFeatures      = []byte(`"features"`)
	keyPrediction    = []byte(`"prediction"`)
	keyProbabilities = []byte(`"probabilities"`)
)

// valueAt returns the index of the value of key in the JSON object b, or
// -1. It is a scan, not a parse: tabular payloads and outputs are small
// flat objects ({"features":[...]}, {"prediction":y,"probabilities":[...]})
// and the request path must not allocate; a key inside a nested string is
// not expected there.
func valueAt(b, key []byte) int {
	i := bytes.Index(b, key)
	if i < 0 {
		return -1
	}
	i = jsonscan.SkipSpace(b, i+len(key))
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return jsonscan.SkipSpace(b, i+1)
}

// scanFeatures appends the payload's features to dst.
func scanFeatures(dst []float64, payload []byte) ([]float64, bool) {
	i := valueAt(payload, keyFeatures)
	if i < 0 {
		return dst, false
	}
	out, _, ok := jsonscan.AppendFloats(dst, payload, i)
	return out, ok
}

// scanOutput reads a prediction and, when present, the probabilities
// (appended to probs). hasValue is false for a prediction that is not a
// number (a class name, an array).
func scanOutput(probs []float64, out []byte) (value float64, hasValue bool, _ []float64, hasProbs bool) {
	if i := valueAt(out, keyPrediction); i >= 0 {
		if v, _, ok := jsonscan.Number(out, i); ok {
			value, hasValue = v, true
		}
	}
	if i := valueAt(out, keyProbabilities); i >= 0 {
		p, _, ok := jsonscan.AppendFloats(probs, out, i)
		if ok && len(p) > len(probs) {
			return value, hasValue, p, true
		}
	}
	return value, hasValue, probs, false
}
