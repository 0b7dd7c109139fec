package modelhost

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/manta-ml/manta/api"
)

func TestDirStoreVersionsAndLatest(t *testing.T) {
	s := newDirStore(t)
	ctx := context.Background()
	id := "eta-eu-road"
	for _, v := range []string{"1", "2", "10", "9"} {
		putVersion(t, s, &Manifest{ID: id, Version: v, Runtime: GoRuntimeName, Entrypoint: testFunc}, nil)
	}
	// Invisible: a version directory without manifest (a push in progress),
	// and names that are not versions.
	for _, d := range []string{"11", "011", "x", ".tmp"} {
		if err := os.MkdirAll(filepath.Join(s.Root(), id, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.Root(), id, "11", "model.bin"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	vs, err := s.Versions(ctx, id)
	if err != nil || !reflect.DeepEqual(vs, []string{"1", "2", "9", "10"}) {
		t.Fatalf("Versions = %v, %v; want numeric order without invisible ones", vs, err)
	}
	if v, err := s.Latest(ctx, id); err != nil || v != "10" {
		t.Fatalf("Latest without LATEST = %q, %v; want the highest, 10", v, err)
	}
	if err := s.SetLatest(ctx, id, "2"); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Latest(ctx, id); err != nil || v != "2" {
		t.Fatalf("Latest = %q, %v; want 2 from LATEST", v, err)
	}
	if err := s.SetLatest(ctx, id, "11"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("SetLatest to an invisible version: %v, want not_found", err)
	}
	// A hand-written LATEST with a newline.
	if err := os.WriteFile(filepath.Join(s.Root(), id, LatestName), []byte("9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Latest(ctx, id); err != nil || v != "9" {
		t.Fatalf("Latest = %q, %v; want 9", v, err)
	}
	// LATEST naming a missing version is an error, not a silent fallback.
	if err := os.WriteFile(filepath.Join(s.Root(), id, LatestName), []byte("11"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Latest(ctx, id); !errors.Is(err, api.ErrNotFound) || !strings.Contains(err.Error(), "LATEST") {
		t.Errorf("Latest with dangling LATEST: %v", err)
	}
	// Deleting the version LATEST names removes LATEST.
	if err := s.SetLatest(ctx, id, "9"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, id, "9"); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Latest(ctx, id); err != nil || v != "10" {
		t.Errorf("Latest after deleting the LATEST version = %q, %v; want 10", v, err)
	}
	if err := s.Delete(ctx, id, "9"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("second Delete: %v", err)
	}

	m, err := s.Manifest(ctx, id, "10")
	if err != nil || m.ID != id || m.Version != "10" {
		t.Fatalf("Manifest = %+v, %v", m, err)
	}
	if _, err := s.Manifest(ctx, id, "11"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("Manifest of invisible version: %v", err)
	}
	if _, err := s.Versions(ctx, "nope"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("Versions of unknown model: %v", err)
	}
	if _, err := s.Latest(ctx, "nope"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("Latest of unknown model: %v", err)
	}

	putVersion(t, s, &Manifest{ID: "a-model", Version: "1", Runtime: GoRuntimeName, Entrypoint: testFunc}, nil)
	os.MkdirAll(filepath.Join(s.Root(), "empty-model", "1"), 0o755) // no manifest: not listed
	os.MkdirAll(filepath.Join(s.Root(), "Not_An_ID", "1"), 0o755)
	ids, err := s.List(ctx)
	if err != nil || !reflect.DeepEqual(ids, []string{"a-model", id}) {
		t.Errorf("List = %v, %v", ids, err)
	}
	if err := s.Delete(ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.List(ctx); !reflect.DeepEqual(ids, []string{"a-model"}) {
		t.Errorf("List after deleting the model = %v", ids)
	}
}

func TestDirStoreManifestMustMatchItsPlace(t *testing.T) {
	s := newDirStore(t)
	m := putVersion(t, s, &Manifest{ID: "one", Version: "1", Runtime: GoRuntimeName, Entrypoint: testFunc}, nil)
	b, _ := EncodeManifest(m)
	if err := os.MkdirAll(filepath.Join(s.Root(), "two", "5"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Root(), "two", "5", ManifestName), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Manifest(context.Background(), "two", "5"); !errors.Is(err, api.ErrBadInput) {
		t.Errorf("Manifest copied to another id/version: %v, want bad_input", err)
	}
}

func TestDirStoreRefusesTraversal(t *testing.T) {
	s := newDirStore(t)
	ctx := context.Background()
	secret := filepath.Join(filepath.Dir(s.Root()), "secret")
	os.WriteFile(secret, []byte("x"), 0o644)
	badIDs := []string{"..", "../x", "a/b", "a..b", "/etc", "", ".hidden", "UPPER", "a\\b", strings.Repeat("a", 129)}
	for _, id := range badIDs {
		if _, err := s.Versions(ctx, id); !errors.Is(err, api.ErrBadInput) {
			t.Errorf("Versions(%q): %v, want bad_input", id, err)
		}
		if _, err := s.Open(ctx, id, "1", "x"); !errors.Is(err, api.ErrBadInput) {
			t.Errorf("Open(%q): %v, want bad_input", id, err)
		}
		if err := s.Put(ctx, id, "1", "x", strings.NewReader("x"), 1); !errors.Is(err, api.ErrBadInput) {
			t.Errorf("Put(%q): %v, want bad_input", id, err)
		}
		if err := s.Delete(ctx, id, ""); !errors.Is(err, api.ErrBadInput) {
			t.Errorf("Delete(%q): %v, want bad_input", id, err)
		}
	}
	for _, v := range []string{"..", "0", "01", "-1", "1/../..", "1.0", "", "x"} {
		if _, err := s.Open(ctx, "m", v, "x"); !errors.Is(err, api.ErrBadInput) {
			t.Errorf("Open(version %q): %v, want bad_input", v, err)
		}
		if err := s.SetLatest(ctx, "m", v); !errors.Is(err, api.ErrBadInput) {
			t.Errorf("SetLatest(%q): %v, want bad_input", v, err)
		}
	}
	for _, p := range []string{"../../secret", "../secret", "/etc/passwd", "a/../../secret", "./a", "a//b", "a/", "", ".", "a\\..\\b"} {
		if _, err := s.Open(ctx, "m", "1", p); !errors.Is(err, api.ErrBadInput) {
			t.Errorf("Open(path %q): %v, want bad_input", p, err)
		}
		if err := s.Put(ctx, "m", "1", p, strings.NewReader("x"), 1); !errors.Is(err, api.ErrBadInput) {
			t.Errorf("Put(path %q): %v, want bad_input", p, err)
		}
	}
}

func TestDirStorePutOpen(t *testing.T) {
	s := newDirStore(t)
	ctx := context.Background()
	if err := s.Put(ctx, "m", "1", "sub/dir/w.bin", strings.NewReader("hello"), 5); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Open(ctx, "m", "1", "sub/dir/w.bin")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "hello" {
		t.Errorf("read %q", b)
	}
	// Wrong size: nothing written, no temporary file left.
	if err := s.Put(ctx, "m", "1", "short.bin", strings.NewReader("abc"), 5); err == nil {
		t.Error("Put with a wrong size succeeded")
	}
	if _, err := s.Open(ctx, "m", "1", "short.bin"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("Open after failed Put: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Join(s.Root(), "m", "1"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".manta-tmp") {
			t.Errorf("temporary file %s left", e.Name())
		}
	}
	// A cancelled context stops the write.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Put(cctx, "m", "1", "c.bin", strings.NewReader("abc"), 3); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with cancelled ctx: %v", err)
	}
}

func TestDirStoreFetchVerifiesAndRemembers(t *testing.T) {
	s := newDirStore(t)
	ctx := context.Background()
	m := putVersion(t, s, &Manifest{ID: "lin", Version: "1", Runtime: LinearRuntimeName, Entrypoint: "model.json"},
		map[string][]byte{"model.json": []byte(`{"weights":[1,2],"bias":0}`), "extra/readme.txt": []byte("notes")})
	dir, err := s.Fetch(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if dir != filepath.Join(s.Root(), "lin", "1") {
		t.Errorf("Fetch dir = %s", dir)
	}
	p := filepath.Join(dir, "model.json")
	st, _ := os.Stat(p)
	// Rewrite in place keeping size and mtime: the remembered verification
	// is trusted (this is what saves rehashing big files on every load)...
	if err := os.WriteFile(p, []byte(`{"weights":[3,2],"bias":0}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fetch(ctx, m); err != nil {
		t.Fatalf("Fetch of an unchanged stamp rehashed: %v", err)
	}
	// ...and a changed mtime makes it hash again and refuse.
	later := st.ModTime().Add(time.Second)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	_, err = s.Fetch(ctx, m)
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.File != "model.json" || !errors.Is(err, api.ErrLoadFailed) {
		t.Fatalf("Fetch after tampering: %v, want a VerifyError naming model.json", err)
	}
	// A missing file is named too.
	os.Remove(filepath.Join(dir, "extra", "readme.txt"))
	os.WriteFile(p, []byte(`{"weights":[1,2],"bias":0}`), 0o644)
	if _, err := s.Fetch(ctx, m); err == nil || !strings.Contains(err.Error(), "verify extra/readme.txt: file missing") {
		t.Errorf("Fetch with a missing file: %v", err)
	}
}

func TestVerifyFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "model.joblib")
	content := []byte("some model bytes")
	os.WriteFile(p, content, 0o644)
	good := File{Path: "model.joblib", Size: int64(len(content)), SHA256: sha(content)}
	if err := VerifyFile(p, good); err != nil {
		t.Fatal(err)
	}
	badSum := good
	badSum.SHA256 = sha([]byte("other"))
	err := VerifyFile(p, badSum)
	want := "verify model.joblib: sha256 mismatch: want " + badSum.SHA256 + " got " + good.SHA256
	if err == nil || err.Error() != want || !errors.Is(err, api.ErrLoadFailed) {
		t.Errorf("VerifyFile = %v, want %q wrapping load_failed", err, want)
	}
	badSize := good
	badSize.Size++
	if err := VerifyFile(p, badSize); err == nil || !strings.Contains(err.Error(), "verify model.joblib: size mismatch") {
		t.Errorf("VerifyFile size = %v", err)
	}
	if err := VerifyFile(filepath.Join(dir, "nope"), good); err == nil || !strings.Contains(err.Error(), "file missing") {
		t.Errorf("VerifyFile missing = %v", err)
	}
	if err := VerifyFile(dir, good); err == nil {
		t.Error("VerifyFile of a directory succeeded")
	}
}
