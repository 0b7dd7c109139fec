package strategy

import (
	"bytes"
	"encoding/json"
	"math"
)

// Helpers that read model outputs. Outputs are bytes; by docs/ARCHITECTURE.md they are
// JSON objects such as {"prediction": 0.93, "probabilities": [0.07, 0.93]}.

// Canonical returns a form of output in which equal JSON values are equal
// bytes: object keys sorted, insignificant space removed, numbers in one
// notation (1, 1.0 and 1e0 are the same). Output that is not JSON is
// returned without surrounding white space, compared as bytes.
func Canonical(output []byte) []byte {
	v, ok := decode(output)
	if !ok {
		return bytes.Trim(output, jsonSpace)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return bytes.Trim(output, jsonSpace)
	}
	return b
}

// jsonSpace is JSON's insignificant white space (bytes.TrimSpace would also
// trim \f and \v, which JSON does not allow).
const jsonSpace = " \t\r\n"

// Field returns the canonical form of the value at key of a JSON object
// output (key "" means the whole output).
func Field(output []byte, key string) ([]byte, bool) {
	if key == "" {
		return Canonical(output), true
	}
	v, ok := decode(output)
	if !ok {
		return nil, false
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, false
	}
	fv, ok := obj[key]
	if !ok {
		return nil, false
	}
	b, err := json.Marshal(fv)
	return b, err == nil
}

// Number returns the number at key of a JSON object output, or the output
// itself when it is a bare JSON number and key is "".
func Number(output []byte, key string) (float64, bool) {
	v, ok := decode(output)
	if !ok {
		return 0, false
	}
	if key != "" {
		obj, ok := v.(map[string]any)
		if !ok {
			return 0, false
		}
		v = obj[key]
	}
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// Confidence reads a model's confidence from its output: the number at
// "confidence", else the largest of "probabilities". It reports false when
// the output carries neither.
func Confidence(output []byte) (float64, bool) {
	v, ok := decode(output)
	if !ok {
		return 0, false
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return 0, false
	}
	if c, ok := obj["confidence"].(float64); ok {
		return c, true
	}
	ps, ok := obj["probabilities"].([]any)
	if !ok || len(ps) == 0 {
		return 0, false
	}
	best, found := math.Inf(-1), false
	for _, p := range ps {
		if f, ok := p.(float64); ok && f > best {
			best, found = f, true
		}
	}
	return best, found
}

func decode(output []byte) (any, bool) {
	var v any
	if err := json.Unmarshal(output, &v); err != nil {
		return nil, false
	}
	return v, true
}
