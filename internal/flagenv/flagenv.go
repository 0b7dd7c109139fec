// Package flagenv binds command-line flags to environment variables one
// way for every command: a flag's default is its variable's value when the
// variable is set and not empty, the flag given on the command line wins,
// and a variable that does not parse is an error (never silently the
// default). The bound variable travels with the flag's Value (Env), so a
// usage printer shows it for every flag that has one.
//
//	b := flagenv.New(fs)
//	b.String(&store, "store", "MANTA_STORE", "./models", "model store")
//	b.Duration(&idle, "idle", "MANTA_IDLE", 5*time.Minute, "deactivate a model idle this long")
//	if err := b.Err(); err != nil { ... } // MANTA_IDLE="soon": time: invalid duration
package flagenv

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/manta-ml/manta/internal/bytesize"
)

// Binder registers flags bound to environment variables on one FlagSet.
type Binder struct {
	fs   *flag.FlagSet
	errs []error
}

// New returns a Binder for fs.
func New(fs *flag.FlagSet) *Binder { return &Binder{fs: fs} }

// Err reports every environment variable whose value did not parse.
func (b *Binder) Err() error { return errors.Join(b.errs...) }

// Var registers v as flag name, bound to the environment variable env (none
// when env is empty). v holds the default; the variable, when set,
// replaces it.
func (b *Binder) Var(v flag.Value, name, env, usage string) {
	b.bind(v, name, env, "value", usage)
}

func (b *Binder) bind(v flag.Value, name, env, typ, usage string) {
	if env != "" {
		if s, ok := os.LookupEnv(env); ok && s != "" {
			if err := v.Set(s); err != nil {
				b.errs = append(b.errs, fmt.Errorf("%s=%q: %w", env, s, err))
			}
		}
	}
	bf, _ := v.(interface{ IsBoolFlag() bool })
	b.fs.Var(&bound{Value: v, env: env, typ: typ, isBool: bf != nil && bf.IsBoolFlag()}, name, usage)
}

// String binds a string flag.
func (b *Binder) String(p *string, name, env, def, usage string) {
	*p = def
	b.bind(&value[string]{p, func(s string) (string, error) { return s, nil }, func(s string) string { return s }}, name, env, "string", usage)
}

// Int binds an int flag.
func (b *Binder) Int(p *int, name, env string, def int, usage string) {
	*p = def
	b.bind(&value[int]{p, strconv.Atoi, strconv.Itoa}, name, env, "int", usage)
}

// Bool binds a bool flag (strconv.ParseBool: 1, t, true, 0, f, false, ...).
func (b *Binder) Bool(p *bool, name, env string, def bool, usage string) {
	*p = def
	b.bind(&value[bool]{p, strconv.ParseBool, strconv.FormatBool}, name, env, "", usage)
}

// Duration binds a time.Duration flag (time.ParseDuration).
func (b *Binder) Duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	*p = def
	b.bind(&value[time.Duration]{p, time.ParseDuration, time.Duration.String}, name, env, "duration", usage)
}

// Bytes binds a size flag read by bytesize.Parse (4GiB, 1.5G, 512MiB, bytes).
// A zero default shows as no default (the usage says what zero means).
func (b *Binder) Bytes(p *int64, name, env string, def int64, usage string) {
	*p = def
	format := func(n int64) string {
		if n == 0 {
			return ""
		}
		return strconv.FormatInt(n, 10)
	}
	b.bind(&value[int64]{p, bytesize.Parse, format}, name, env, "size", usage)
}

// Env returns the environment variable bound to f, or "" if none.
func Env(f *flag.Flag) string {
	if b, ok := f.Value.(*bound); ok {
		return b.env
	}
	return ""
}

// TypeName returns the name of f's value for a usage line ("string",
// "duration", "size", ...; "" for a bool), as flag.UnquoteUsage does for
// the standard library's flags.
func TypeName(f *flag.Flag) string {
	if b, ok := f.Value.(*bound); ok {
		return b.typ
	}
	name, _ := flag.UnquoteUsage(f)
	return name
}

// bound is a flag.Value with its environment variable.
type bound struct {
	flag.Value
	env, typ string
	isBool   bool
}

func (b *bound) String() string {
	if b == nil || b.Value == nil {
		return ""
	}
	return b.Value.String()
}

func (b *bound) IsBoolFlag() bool { return b.isBool }

// value is a typed flag.Value.
type value[T any] struct {
	p      *T
	parse  func(string) (T, error)
	format func(T) string
}

func (v *value[T]) Set(s string) error {
	x, err := v.parse(s)
	if err != nil {
		return err
	}
	*v.p = x
	return nil
}

func (v *value[T]) String() string {
	if v == nil || v.p == nil {
		return ""
	}
	return v.format(*v.p)
}

func (v *value[T]) IsBoolFlag() bool {
	_, ok := any(v.p).(*bool)
	return ok
}
