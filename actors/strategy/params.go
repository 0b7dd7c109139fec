package strategy

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/manta-ml/manta/api"
)

// ParamReader reads typed strategy params and remembers which keys were read,
// so that a factory rejects params it does not know instead of silently
// ignoring a typo:
//
//	pr := strategy.ReadParams(params)
//	delay := pr.Duration("delay", 0)
//	max := pr.Int("max", 1)
//	if err := pr.Err(); err != nil {
//		return nil, err
//	}
type ParamReader struct {
	m    map[string]string
	used map[string]bool
	errs []string
}

// ReadParams starts reading params (nil is fine).
func ReadParams(params map[string]string) *ParamReader {
	return &ParamReader{m: params, used: map[string]bool{}}
}

func (p *ParamReader) get(key string) (string, bool) {
	p.used[key] = true
	v, ok := p.m[key]
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}

func (p *ParamReader) fail(key, v, want string) {
	p.errs = append(p.errs, fmt.Sprintf("%s=%q: want %s", key, v, want))
}

// Has reports whether key is set (and marks it known).
func (p *ParamReader) Has(key string) bool {
	_, ok := p.get(key)
	return ok
}

// String returns the value of key, or def.
func (p *ParamReader) String(key, def string) string {
	if v, ok := p.get(key); ok {
		return v
	}
	return def
}

// List returns the comma-separated values of key, or nil.
func (p *ParamReader) List(key string) []string {
	v, ok := p.get(key)
	if !ok {
		return nil
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Duration returns key as a duration ("15ms", "1.5s"; a bare number is
// milliseconds), or def. Negative durations are an error.
func (p *ParamReader) Duration(key string, def time.Duration) time.Duration {
	v, ok := p.get(key)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		f, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil {
			p.fail(key, v, "a duration such as 15ms")
			return def
		}
		d = time.Duration(f * float64(time.Millisecond))
	}
	if d < 0 {
		p.fail(key, v, "a duration >= 0")
		return def
	}
	return d
}

// Int returns key as an integer >= 0, or def.
func (p *ParamReader) Int(key string, def int) int {
	v, ok := p.get(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		p.fail(key, v, "an integer >= 0")
		return def
	}
	return n
}

// Float returns key as a finite number, or def.
func (p *ParamReader) Float(key string, def float64) float64 {
	v, ok := p.get(key)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f != f || f > 1e300 || f < -1e300 {
		p.fail(key, v, "a number")
		return def
	}
	return f
}

// Bool returns key as a boolean, or def.
func (p *ParamReader) Bool(key string, def bool) bool {
	v, ok := p.get(key)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(key, v, "true or false")
		return def
	}
	return b
}

// Failf records a validation error of the caller's own.
func (p *ParamReader) Failf(format string, args ...any) {
	p.errs = append(p.errs, fmt.Sprintf(format, args...))
}

// Err returns an error wrapping api.ErrBadInput naming every unparsable value
// and every key that was never read, or nil.
func (p *ParamReader) Err() error {
	errs := append([]string(nil), p.errs...)
	var unknown []string
	for k := range p.m {
		if !p.used[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		known := make([]string, 0, len(p.used))
		for k := range p.used {
			known = append(known, k)
		}
		sort.Strings(known)
		errs = append(errs, fmt.Sprintf("unknown params %s (known: %s)", strings.Join(unknown, ", "), strings.Join(known, ", ")))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", api.ErrBadInput, strings.Join(errs, "; "))
}
