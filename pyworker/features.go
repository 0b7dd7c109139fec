package pyworker

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/manta-ml/manta/internal/jsonscan"
)

// parseFeatures appends the numbers of a {"features": [x1, ..., xn]}
// payload to dst. The common shape (that one key, an array of numbers) is
// scanned by hand, which is several times faster than encoding/json; any
// other shape (more keys, escapes, ...) goes through encoding/json, so the
// two always agree on what is accepted.
func parseFeatures(dst []float64, b []byte) ([]float64, error) {
	if out, ok := scanFeatures(dst, b); ok {
		return out, nil
	}
	return decodeFeatures(dst, b)
}

// decodeFeatures is the encoding/json path: an object whose "features" key
// (exactly that spelling) holds an array of numbers; other keys are ignored.
func decodeFeatures(dst []float64, b []byte) ([]float64, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return dst, fmt.Errorf("input is not a JSON object: %v", err)
	}
	raw, ok := obj["features"]
	if !ok {
		return dst, errors.New(`input has no "features" array`)
	}
	var fs []float64
	if err := json.Unmarshal(raw, &fs); err != nil || fs == nil {
		return dst, errors.New(`"features" must be an array of numbers`)
	}
	return append(dst, fs...), nil
}

// scanFeatures accepts exactly: ws { ws "features" ws : ws [ numbers ] ws } ws
// with JSON numbers (read by jsonscan, the project's one number scanner).
// ok false means "not that shape", not "invalid".
func scanFeatures(dst []float64, b []byte) ([]float64, bool) {
	start := len(dst)
	i := jsonscan.SkipSpace(b, 0)
	const key = `"features"`
	if i >= len(b) || b[i] != '{' {
		return dst, false
	}
	i = jsonscan.SkipSpace(b, i+1)
	if len(b)-i < len(key) || string(b[i:i+len(key)]) != key {
		return dst, false
	}
	i = jsonscan.SkipSpace(b, i+len(key))
	if i >= len(b) || b[i] != ':' {
		return dst, false
	}
	dst, i, ok := jsonscan.AppendFloats(dst, b, i+1)
	if !ok {
		return dst[:start], false
	}
	i = jsonscan.SkipSpace(b, i)
	if i >= len(b) || b[i] != '}' || jsonscan.SkipSpace(b, i+1) != len(b) {
		return dst[:start], false
	}
	return dst, true
}
