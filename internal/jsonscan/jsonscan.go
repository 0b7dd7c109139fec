// Package jsonscan is the one hand-rolled scanner for the JSON shape on the
// hot path: arrays of numbers. The linear runtime (modelhost) and the Python
// worker's feature codec (pyworker) both read their payloads with it.
//
// It accepts exactly the JSON grammar (RFC 8259) for numbers and arrays,
// rejects null (except AppendFloatsNaN, for the tree runtimes, where null
// is a missing value, read as NaN) and everything else, and gives the same
// float64 as encoding/json (checked by FuzzParseFloats): numbers whose decimal mantissa
// fits 53 bits and whose exponent is within ±22 are converted exactly with
// one multiplication or division (both operands exact, so the IEEE result is
// correctly rounded: Clinger's fast path, as in strconv); every other number
// goes to strconv.ParseFloat, which encoding/json uses too.
package jsonscan

import (
	"strconv"
	"unsafe"
)

// pow10 holds the powers of ten that are exact in float64.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// SkipSpace returns the index of the first byte at or after i that is not
// JSON white space.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// Number parses the JSON number starting at b[i]. It returns the value and
// the index after it; ok is false on a syntax error or an out-of-range
// number (as encoding/json refuses 1e400 for a float64).
func Number(b []byte, i int) (v float64, next int, ok bool) {
	start := i
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	if i >= len(b) {
		return 0, i, false
	}
	var mant uint64
	digits, exp10 := 0, 0
	exact := true
	switch c := b[i]; {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if digits < 19 {
				mant = mant*10 + uint64(b[i]-'0')
				digits++
			} else {
				exp10++
				exact = false
			}
			i++
		}
	default:
		return 0, i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return 0, i, false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			d := uint64(b[i] - '0')
			switch {
			case mant == 0 && d == 0:
				exp10-- // leading zeros of a fraction are not significant
			case digits < 19:
				mant = mant*10 + d
				digits++
				exp10--
			default:
				exact = false
			}
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return 0, i, false
		}
		e := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if e < 100000 {
				e = e*10 + int(b[i]-'0')
			}
			i++
		}
		if eneg {
			e = -e
		}
		exp10 += e
	}
	if mant == 0 {
		if neg {
			return negZero, i, true
		}
		return 0, i, true
	}
	if exact && mant <= 1<<53 && exp10 >= -22 && exp10 <= 22 {
		f := float64(mant)
		if exp10 > 0 {
			f *= pow10[exp10]
		} else if exp10 < 0 {
			f /= pow10[-exp10]
		}
		if neg {
			f = -f
		}
		return f, i, true
	}
	// b[start:i] is a syntactically valid JSON number, and ParseFloat does
	// not keep its argument unless it fails, when we drop the error.
	f, err := strconv.ParseFloat(unsafe.String(&b[start], i-start), 64)
	if err != nil {
		return 0, i, false
	}
	return f, i, true
}

var negZero = func() float64 { z := 0.0; return -z }()

// AppendFloats parses the JSON array of numbers starting at b[i] (after
// optional white space) and appends its values to dst. It returns the index
// after the closing bracket. On failure dst may hold some of the values.
func AppendFloats(dst []float64, b []byte, i int) ([]float64, int, bool) {
	i = SkipSpace(b, i)
	if i >= len(b) || b[i] != '[' {
		return dst, i, false
	}
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return dst, i + 1, true
	}
	for {
		v, n, ok := Number(b, i)
		if !ok {
			return dst, n, false
		}
		dst = append(dst, v)
		i = SkipSpace(b, n)
		if i >= len(b) {
			return dst, i, false
		}
		switch b[i] {
		case ',':
			i = SkipSpace(b, i+1)
		case ']':
			return dst, i + 1, true
		default:
			return dst, i, false
		}
	}
}

// ParseFloats parses a JSON document that is exactly one array of numbers
// (white space around it allowed) into dst[:0]. It accepts what
// encoding/json accepts into a []float64, except null elements, and gives
// identical values.
func ParseFloats(b []byte, dst []float64) ([]float64, bool) {
	dst, i, ok := AppendFloats(dst[:0], b, 0)
	if !ok || SkipSpace(b, i) != len(b) {
		return dst, false
	}
	return dst, true
}

// Dot parses the JSON array of numbers at b[i] (after optional white space)
// and returns Σ w[k]·x[k] over the first len(w) values, the number of values
// seen, and the index after the closing bracket. Values beyond len(w) are
// counted (and checked for syntax) but not used.
func Dot(b []byte, i int, w []float64) (sum float64, n int, next int, ok bool) {
	i = SkipSpace(b, i)
	if i >= len(b) || b[i] != '[' {
		return 0, 0, i, false
	}
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return 0, 0, i + 1, true
	}
	for {
		v, j, ok := Number(b, i)
		if !ok {
			return 0, n, j, false
		}
		if n < len(w) {
			sum += w[n] * v
		}
		n++
		i = SkipSpace(b, j)
		if i >= len(b) {
			return 0, n, i, false
		}
		switch b[i] {
		case ',':
			i = SkipSpace(b, i+1)
		case ']':
			return sum, n, i + 1, true
		default:
			return 0, n, i, false
		}
	}
}
