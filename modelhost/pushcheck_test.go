package modelhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/manta-ml/manta/api"
)

// pushCheckRuntime is a runtime that checks its entrypoint at push: the
// content "bad" does not parse; anything else holds 1234 bytes.
type pushCheckRuntime struct{ linearRuntime }

func (pushCheckRuntime) CheckPush(_ context.Context, m *Manifest, dir string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, m.Entrypoint))
	if err != nil {
		return 0, err
	}
	if string(b) == "bad" {
		return 0, fmt.Errorf("%w: %s: parse: bad model", api.ErrBadInput, m.Entrypoint)
	}
	return 1234, nil
}

func init() { RegisterRuntime("test-pushcheck", pushCheckRuntime{}) }

// TestPushChecker checks that Push asks a PushChecker runtime before
// uploading anything: a file it refuses fails the push with its error
// (bad_input) and leaves no version; an accepted one gets memory_bytes from
// the runtime unless the manifest set it.
func TestPushChecker(t *testing.T) {
	store := newDirStore(t)
	ctx := context.Background()
	_, err := Push(ctx, store, writeDir(t, map[string]string{
		"manifest.json": `{"id":"checked","runtime":"test-pushcheck","entrypoint":"m.bin"}`,
		"m.bin":         "bad",
	}), PushOptions{})
	if !errors.Is(err, api.ErrBadInput) || !strings.Contains(err.Error(), "m.bin: parse: bad model") || !strings.Contains(err.Error(), "runtime test-pushcheck") {
		t.Fatalf("push of a file the runtime refuses: %v", err)
	}
	if ids, _ := store.List(ctx); len(ids) != 0 {
		t.Fatalf("a refused push left models %v", ids)
	}
	m, err := Push(ctx, store, writeDir(t, map[string]string{
		"manifest.json": `{"id":"checked","runtime":"test-pushcheck","entrypoint":"m.bin"}`,
		"m.bin":         "good",
	}), PushOptions{})
	if err != nil || m.MemoryBytes != 1234 {
		t.Fatalf("push: %+v %v", m, err)
	}
	if got, err := store.Manifest(ctx, "checked", m.Version); err != nil || got.MemoryBytes != 1234 {
		t.Fatalf("stored manifest %+v %v", got, err)
	}
	m, err = Push(ctx, store, writeDir(t, map[string]string{
		"manifest.json": `{"id":"checked","runtime":"test-pushcheck","entrypoint":"m.bin","memory_bytes":99}`,
		"m.bin":         "good",
	}), PushOptions{})
	if err != nil || m.MemoryBytes != 99 {
		t.Fatalf("push with memory_bytes set: %+v %v", m, err)
	}
}
