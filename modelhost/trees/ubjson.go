package trees

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// XGBoost also saves its JSON document as Universal Binary JSON
// (Booster.save_model("model.ubj"); the default format of XGBoost 2.1+ for
// names not ending in .json). ubjsonToJSON transcodes it to JSON text, which
// parseXGBoost then reads as any model.json: one reader of the model, two
// encodings.
//
// A UBJSON file can promise more than it holds (a count of a million
// elements in ten bytes), so no count sizes an allocation: every element
// must be read from the input before it is written, a count is checked
// against the bytes left, and typed containers of zero-byte elements (null,
// true, false, no-op), which XGBoost never writes, are refused. The output
// is therefore at most a constant times the input, and nesting is bounded
// so a file cannot exhaust the stack.

// maxUBJDepth bounds container nesting (an XGBoost model nests about six).
const maxUBJDepth = 64

// looksUBJSON reports whether b, which starts with '{', is UBJSON rather
// than JSON: a UBJSON object goes on with a key length's integer marker or
// an optimised container's '$' or '#'; JSON with white space, '"' or '}'.
func looksUBJSON(b []byte) bool {
	if len(b) < 2 || b[0] != '{' {
		return false
	}
	switch b[1] {
	case 'i', 'U', 'I', 'l', 'L', '$', '#':
		return true
	}
	return false
}

type ubjReader struct {
	b   []byte
	i   int
	out []byte
}

func ubjsonToJSON(b []byte) ([]byte, error) {
	r := &ubjReader{b: b, out: make([]byte, 0, 2*len(b))}
	m, err := r.byte()
	if err != nil {
		return nil, err
	}
	if err := r.value(m, 0); err != nil {
		return nil, fmt.Errorf("ubjson at byte %d: %w", r.i, err)
	}
	if r.i != len(r.b) {
		return nil, fmt.Errorf("ubjson: %d bytes after the document", len(r.b)-r.i)
	}
	return r.out, nil
}

var errUBJEOF = errors.New("unexpected end of file")

func (r *ubjReader) byte() (byte, error) {
	if r.i >= len(r.b) {
		return 0, errUBJEOF
	}
	c := r.b[r.i]
	r.i++
	return c, nil
}

func (r *ubjReader) take(n int) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.i {
		return nil, errUBJEOF
	}
	p := r.b[r.i : r.i+n]
	r.i += n
	return p, nil
}

// size is the payload size of a fixed-size value of marker m, or -1.
func ubjSize(m byte) int {
	switch m {
	case 'i', 'U', 'C':
		return 1
	case 'I':
		return 2
	case 'l', 'd':
		return 4
	case 'L', 'D':
		return 8
	}
	return -1
}

// integer reads an integer value of marker m (a length or a count).
func (r *ubjReader) integer(m byte) (int64, error) {
	n := ubjSize(m)
	if n < 0 || m == 'd' || m == 'D' || m == 'C' {
		return 0, fmt.Errorf("marker %q: want an integer", m)
	}
	p, err := r.take(n)
	if err != nil {
		return 0, err
	}
	switch m {
	case 'i':
		return int64(int8(p[0])), nil
	case 'U':
		return int64(p[0]), nil
	case 'I':
		return int64(int16(binary.BigEndian.Uint16(p))), nil
	case 'l':
		return int64(int32(binary.BigEndian.Uint32(p))), nil
	default:
		return int64(binary.BigEndian.Uint64(p)), nil
	}
}

// length reads a marker and a non-negative integer no larger than the
// bytes left times perByte (how many items one byte can hold at most).
func (r *ubjReader) length(perByte int) (int, error) {
	m, err := r.byte()
	if err != nil {
		return 0, err
	}
	n, err := r.integer(m)
	if err != nil {
		return 0, err
	}
	if n < 0 || n > int64(len(r.b)-r.i)*int64(perByte) {
		return 0, fmt.Errorf("length %d with %d bytes left", n, len(r.b)-r.i)
	}
	return int(n), nil
}

func (r *ubjReader) str() error {
	n, err := r.length(1)
	if err != nil {
		return err
	}
	p, err := r.take(n)
	if err != nil {
		return err
	}
	if !utf8.Valid(p) {
		return errors.New("string is not UTF-8")
	}
	r.out = strconv.AppendQuote(r.out, string(p))
	return nil
}

// value transcodes one value whose marker m has been read.
func (r *ubjReader) value(m byte, depth int) error {
	switch m {
	case 'Z':
		r.out = append(r.out, "null"...)
	case 'T':
		r.out = append(r.out, "true"...)
	case 'F':
		r.out = append(r.out, "false"...)
	case 'i', 'U', 'I', 'l', 'L':
		v, err := r.integer(m)
		if err != nil {
			return err
		}
		r.out = strconv.AppendInt(r.out, v, 10)
	case 'd', 'D':
		p, err := r.take(ubjSize(m))
		if err != nil {
			return err
		}
		var v float64
		bits := 64
		if m == 'd' {
			v, bits = float64(math.Float32frombits(binary.BigEndian.Uint32(p))), 32
		} else {
			v = math.Float64frombits(binary.BigEndian.Uint64(p))
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("number %v: JSON has no such number", v)
		}
		r.out = strconv.AppendFloat(r.out, v, 'g', -1, bits)
	case 'C':
		p, err := r.take(1)
		if err != nil {
			return err
		}
		if p[0] >= utf8.RuneSelf {
			return errors.New("char is not ASCII")
		}
		r.out = strconv.AppendQuote(r.out, string(p))
	case 'S':
		return r.str()
	case 'H':
		n, err := r.length(1)
		if err != nil {
			return err
		}
		p, err := r.take(n)
		if err != nil {
			return err
		}
		if _, err := strconv.ParseFloat(string(p), 64); err != nil {
			return fmt.Errorf("high-precision number %.20q", p)
		}
		r.out = append(r.out, p...)
	case '[', '{':
		if depth >= maxUBJDepth {
			return fmt.Errorf("nested deeper than %d", maxUBJDepth)
		}
		return r.container(m == '{', depth+1)
	default:
		return fmt.Errorf("marker %q", m)
	}
	return nil
}

// container transcodes an array or object whose '[' or '{' has been read:
// plain (values up to ']' or '}'), counted ('#'), or typed and counted ('$'
// type '#').
func (r *ubjReader) container(object bool, depth int) error {
	open, end := byte('['), byte(']')
	if object {
		open, end = '{', '}'
	}
	r.out = append(r.out, open)
	var typ byte
	count := -1
	if r.i < len(r.b) && r.b[r.i] == '$' {
		r.i++
		var err error
		if typ, err = r.byte(); err != nil {
			return err
		}
		switch typ {
		case 'Z', 'T', 'F', 'N':
			return fmt.Errorf("typed container of %q: no bytes per element", typ)
		}
		if r.i >= len(r.b) || r.b[r.i] != '#' {
			return errors.New("typed container without a count")
		}
	}
	if r.i < len(r.b) && r.b[r.i] == '#' {
		r.i++
		// Every element takes at least one byte (a typed element its
		// type's size, an untyped one its marker; an object's entries a
		// key length too).
		per := 1
		if n := ubjSize(typ); n > 0 {
			per = n
		}
		n, err := r.length(1)
		if err != nil {
			return err
		}
		if n > (len(r.b)-r.i)/per {
			return fmt.Errorf("count %d with %d bytes left", n, len(r.b)-r.i)
		}
		count = n
	}
	for k := 0; count < 0 || k < count; k++ {
		if count < 0 {
			// Uncounted: no-ops may come before the next element, and
			// the end marker ends the container.
			for r.i < len(r.b) && r.b[r.i] == 'N' {
				r.i++
			}
			if r.i < len(r.b) && r.b[r.i] == end {
				r.i++
				break
			}
		}
		if k > 0 {
			r.out = append(r.out, ',')
		}
		if object {
			if err := r.str(); err != nil { // a key: a length, then bytes
				return fmt.Errorf("key: %w", err)
			}
			r.out = append(r.out, ':')
		}
		m := typ
		if typ == 0 {
			var err error
			if m, err = r.byte(); err != nil {
				return err
			}
		}
		if err := r.value(m, depth); err != nil {
			return err
		}
	}
	r.out = append(r.out, end)
	return nil
}
