package flagenv

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestBinder(t *testing.T) {
	t.Setenv("T_STR", "from-env")
	t.Setenv("T_INT", "7")
	t.Setenv("T_BOOL", "1")
	t.Setenv("T_DUR", "3s")
	t.Setenv("T_SIZE", "1.5GiB")
	t.Setenv("T_EMPTY", "")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	b := New(fs)
	var (
		s, e, n string
		i       int
		on      bool
		d       time.Duration
		size    int64
	)
	b.String(&s, "s", "T_STR", "def", "a string")
	b.String(&e, "e", "T_EMPTY", "def", "empty env: the default")
	b.String(&n, "n", "", "none", "no variable")
	b.Int(&i, "i", "T_INT", 1, "an int")
	b.Bool(&on, "b", "T_BOOL", false, "a bool")
	b.Duration(&d, "d", "T_DUR", time.Second, "a duration")
	b.Bytes(&size, "size", "T_SIZE", 0, "a size")
	if err := b.Err(); err != nil {
		t.Fatal(err)
	}
	if s != "from-env" || e != "def" || n != "none" || i != 7 || !on || d != 3*time.Second || size != 3<<29 {
		t.Fatalf("from the environment: %q %q %q %d %v %v %d", s, e, n, i, on, d, size)
	}
	if err := fs.Parse([]string{"-s", "flag", "-i", "9", "-b=false", "-d", "1m", "-size", "4G"}); err != nil {
		t.Fatal(err)
	}
	if s != "flag" || i != 9 || on || d != time.Minute || size != 4e9 {
		t.Fatalf("the flags win: %q %d %v %v %d", s, i, on, d, size)
	}
	if Env(fs.Lookup("s")) != "T_STR" || Env(fs.Lookup("n")) != "" || fs.Lookup("s").DefValue != "from-env" {
		t.Fatalf("env %q %q, default %q", Env(fs.Lookup("s")), Env(fs.Lookup("n")), fs.Lookup("s").DefValue)
	}
	for name, want := range map[string]string{"s": "string", "i": "int", "b": "", "d": "duration", "size": "size"} {
		if got := TypeName(fs.Lookup(name)); got != want {
			t.Errorf("TypeName(%s) = %q, want %q", name, got, want)
		}
	}
	if err := fs.Parse([]string{"-b"}); err != nil || !on {
		t.Fatalf("a bare bool flag: %v %v", on, err)
	}
}

func TestBinderBadEnvironment(t *testing.T) {
	t.Setenv("T_INT", "seven")
	t.Setenv("T_DUR", "soon")
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	b := New(fs)
	var i int
	var d time.Duration
	b.Int(&i, "i", "T_INT", 1, "")
	b.Duration(&d, "d", "T_DUR", time.Second, "")
	err := b.Err()
	if err == nil || !strings.Contains(err.Error(), `T_INT="seven"`) || !strings.Contains(err.Error(), `T_DUR="soon"`) {
		t.Fatalf("Err = %v, want both variables named", err)
	}
	if i != 1 || d != time.Second {
		t.Fatalf("a bad variable changed the default: %d %v", i, d)
	}
}
