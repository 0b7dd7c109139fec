package quality

import (
	"bytes"
	"fmt"

	"github.com/manta-ml/manta/internal/jsonscan"
)

// MaxReferenceRows bounds the rows a reference file may hold.
const MaxReferenceRows = 1_000_000

// ParseReference reads a manifest's reference file: rows of features, as
// one JSON array of arrays, or one row per line (an array, or an object
// with "features"). Blank lines are skipped. Every row must have at least
// one number; rows are cut to maxFeatures.
func ParseReference(data []byte, maxFeatures int) ([][]float64, error) {
	data = bytes.TrimSpace(data)
	var rows [][]float64
	add := func(line int, b []byte, i int) error {
		row, next, ok := jsonscan.AppendFloats(nil, b, i)
		if !ok || len(row) == 0 {
			return fmt.Errorf("quality: reference row %d: want a non-empty array of numbers", line)
		}
		if len(rows) == MaxReferenceRows {
			return fmt.Errorf("quality: reference: more than %d rows", MaxReferenceRows)
		}
		if len(row) > maxFeatures {
			row = row[:maxFeatures]
		}
		rows = append(rows, row)
		_ = next
		return nil
	}
	// one array of arrays
	if len(data) > 1 && data[0] == '[' {
		if j := jsonscan.SkipSpace(data, 1); j < len(data) && data[j] == '[' {
			i, n := 1, 0
			for {
				i = jsonscan.SkipSpace(data, i)
				if err := add(n, data, i); err != nil {
					return nil, err
				}
				_, next, _ := jsonscan.AppendFloats(nil, data, i)
				i = jsonscan.SkipSpace(data, next)
				n++
				if i >= len(data) {
					return nil, fmt.Errorf("quality: reference: unterminated array")
				}
				if data[i] == ']' {
					if jsonscan.SkipSpace(data, i+1) != len(data) {
						return nil, fmt.Errorf("quality: reference: data after the array")
					}
					return rows, nil
				}
				if data[i] != ',' {
					return nil, fmt.Errorf("quality: reference row %d: want , or ]", n)
				}
				i++
			}
		}
	}
	// one row per line
	for n, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		i := 0
		if line[0] == '{' {
			if i = valueAt(line, keyFeatures); i < 0 {
				return nil, fmt.Errorf("quality: reference line %d: no \"features\"", n+1)
			}
		}
		if err := add(n+1, line, i); err != nil {
			return nil, err
		}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("quality: reference: no rows")
	}
	return rows, nil
}
