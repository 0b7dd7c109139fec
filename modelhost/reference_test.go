package modelhost

import (
	"errors"
	"strings"
	"testing"

	"github.com/manta-ml/manta/api"
)

// TestManifestReference: a manifest's reference must be one of its files.
func TestManifestReference(t *testing.T) {
	m := testManifest("ref", 100)
	m.Files = []File{{Path: "ref.jsonl", Size: 3, SHA256: sha([]byte("[1]"))}}
	m.Reference = "ref.jsonl"
	m.Monitor = true
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if c := m.Clone(); c.Reference != "ref.jsonl" || !c.Monitor {
		t.Fatalf("clone lost reference or monitor: %+v", c)
	}
	m.Reference = "other.jsonl"
	if err := m.Validate(); !errors.Is(err, api.ErrBadInput) || !strings.Contains(err.Error(), "reference") {
		t.Fatalf("reference outside the files: %v", err)
	}
}
