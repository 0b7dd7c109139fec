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
			j, v, exact := scanNumber(b, i)
			if j < 0 {
				return dst[:start], false
			}
			if !exact {
				var err error
				if v, err = strconv.ParseFloat(string(b[i:j]), 64); err != nil {
					return dst[:start], false
				}
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

// pow10 are the powers of ten exactly representable as float64.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// scanNumber returns the end of the JSON number at b[i:] (-1 if there is
// none) and, when exact, its value: a mantissa below 2^53 times a power of
// ten within 10^±22 is one correctly rounded float operation (Clinger's
// fast path, as in strconv). Otherwise the caller parses with strconv.
func scanNumber(b []byte, i int) (end int, v float64, exact bool) {
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	if i >= len(b) {
		return -1, 0, false
	}
	var mant uint64
	digits, exp := 0, 0
	switch {
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if digits < 19 {
				mant = mant*10 + uint64(b[i]-'0')
			} else {
				exp++
			}
			digits++
			i++
		}
	default:
		return -1, 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if mant == 0 && b[i] == '0' {
				exp-- // leading zeros of 0.000x: not significant digits
			} else if digits < 19 {
				mant = mant*10 + uint64(b[i]-'0')
				digits++
				exp--
			} else {
				digits++
			}
			i++
		}
		if i == d {
			return -1, 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		d := i
		e := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if e < 10000 {
				e = e*10 + int(b[i]-'0')
			}
			i++
		}
		if i == d {
			return -1, 0, false
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	if digits > 19 || mant >= 1<<53 || exp < -22 || exp > 22 {
		return i, 0, false
	}
	v = float64(mant)
	if exp >= 0 {
		v *= pow10[exp]
	} else {
		v /= pow10[-exp]
	}
	if neg {
		v = -v
	}
	return i, v, true
}
