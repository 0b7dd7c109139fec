package s3store

import (
	"strings"
	"testing"

	"github.com/manta-ml/manta/internal/testenv"
)

// The stamp changes exactly when Latest could answer differently: a new
// visible version, LATEST moved, a version deleted; a half-pushed version
// (no manifest yet) and another model's changes leave it alone.
func TestVersionStamp(t *testing.T) {
	mc := testenv.StartMinIO(t)
	s := newStore(t, mc)
	ctx := ctxT(t)
	stamp := func() string {
		t.Helper()
		st, err := s.VersionStamp(ctx, "eta")
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	empty := stamp()
	push(t, ctx, s, "eta", "1", map[string][]byte{"model.bin": []byte("v1")})
	s1 := stamp()
	if s1 == empty || s1 == "" {
		t.Fatalf("a pushed version left the stamp %q", s1)
	}
	if again := stamp(); again != s1 {
		t.Fatalf("no change, yet the stamp moved: %q then %q", s1, again)
	}
	if err := s.Put(ctx, "eta", "2", "model.bin", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	push(t, ctx, s, "fraud", "1", map[string][]byte{"model.bin": []byte("f1")})
	if st := stamp(); st != s1 {
		t.Fatalf("a half-pushed version or another model moved the stamp: %q then %q", s1, st)
	}
	push(t, ctx, s, "eta", "2", map[string][]byte{"model.bin": []byte("v2")})
	s2 := stamp()
	if s2 == s1 {
		t.Fatal("a new version did not move the stamp")
	}
	if err := s.SetLatest(ctx, "eta", "1"); err != nil {
		t.Fatal(err)
	}
	s3 := stamp()
	if s3 == s2 {
		t.Fatal("LATEST set did not move the stamp")
	}
	if err := s.SetLatest(ctx, "eta", "2"); err != nil {
		t.Fatal(err)
	}
	s4 := stamp()
	if s4 == s3 {
		t.Fatal("LATEST moved back did not move the stamp")
	}
	if err := s.Delete(ctx, "eta", "1"); err != nil {
		t.Fatal(err)
	}
	if stamp() == s4 {
		t.Fatal("a deleted version did not move the stamp")
	}
}
