package pyworker

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
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
// with JSON numbers. ok false means "not that shape", not "invalid".
func scanFeatures(dst []float64, b []byte) ([]float64, bool) {
	start := len(dst)
	i := skipWS(b, 0)
	const key = `"features"`
	if i >= len(b) || b[i] != '{' {
		return dst, false
	}
	i = skipWS(b, i+1)
	if len(b)-i < len(key) || string(b[i:i+len(key)]) != key {
		return dst, false
	}
	i = skipWS(b, i+len(key))
	if i >= len(b) || b[i] != ':' {
		return dst, false
	}
	i = skipWS(b, i+1)
	if i >= len(b) || b[i] != '[' {
		return dst, false
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		i++
	} else {
		for {
			j := scanNumber(b, i)
			if j < 0 {
				return dst[:start], false
			}
			v, err := strconv.ParseFloat(string(b[i:j]), 64)
			if err != nil {
				return dst[:start], false
			}
			dst = append(dst, v)
			i = skipWS(b, j)
			if i >= len(b) {
				return dst[:start], false
			}
			if b[i] == ']' {
				i++
				break
			}
			if b[i] != ',' {
				return dst[:start], false
			}
			i = skipWS(b, i+1)
		}
	}
	i = skipWS(b, i)
	if i >= len(b) || b[i] != '}' {
		return dst[:start], false
	}
	if skipWS(b, i+1) != len(b) {
		return dst[:start], false
	}
	return dst, true
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// scanNumber returns the end of the JSON number at b[i:], or -1.
func scanNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return -1
	}
	switch {
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return -1
		}
	}
	return i
}
