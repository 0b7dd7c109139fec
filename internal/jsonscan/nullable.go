package jsonscan

import "math"

// AppendFloatsNaN parses the JSON array at b[i] (after optional white space)
// whose elements are numbers or null, appending each number, and NaN for
// each null: the row shape of tree models, where null is a missing value.
// It returns the index after the closing bracket; ok is false on a syntax
// error or an out-of-range number. On failure dst may hold some of the
// values. Numbers are converted as by Number (bit-identical to
// encoding/json).
func AppendFloatsNaN(dst []float64, b []byte, i int) ([]float64, int, bool) {
	i = SkipSpace(b, i)
	if i >= len(b) || b[i] != '[' {
		return dst, i, false
	}
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return dst, i + 1, true
	}
	for {
		if i+4 <= len(b) && b[i] == 'n' && b[i+1] == 'u' && b[i+2] == 'l' && b[i+3] == 'l' {
			dst = append(dst, math.NaN())
			i += 4
		} else {
			v, n, ok := Number(b, i)
			if !ok {
				return dst, n, false
			}
			dst = append(dst, v)
			i = n
		}
		i = SkipSpace(b, i)
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
