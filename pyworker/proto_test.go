package pyworker

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/manta-ml/manta/internal/testenv"
)

// TestPythonProtoGenerated: the worker's manta_pb2.py and worker_pb2.py are
// what `make proto` makes of api/*.proto today, so the Go and the Python
// sides of the protocol come from the same .proto files.
func TestPythonProtoGenerated(t *testing.T) {
	protoc, err := exec.LookPath("protoc")
	if err != nil {
		testenv.Missing(t, "no protoc on PATH")
	}
	out := t.TempDir()
	cmd := exec.Command(protoc, "--python_out="+out, "api/manta.proto", "api/worker.proto")
	cmd.Dir = ".."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, b)
	}
	for _, name := range []string{"manta_pb2.py", "worker_pb2.py"} {
		gen, err := os.ReadFile(filepath.Join(out, "api", name))
		if err != nil {
			t.Fatal(err)
		}
		// As the Makefile's proto target does: the import of the api
		// package becomes one from the worker's package.
		gen = bytes.ReplaceAll(gen, []byte("\nfrom api import "), []byte("\nfrom manta_worker import "))
		have, err := os.ReadFile(filepath.Join("manta_worker", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(gen, have) {
			t.Errorf("manta_worker/%s is not what protoc makes of api/*.proto: run `make proto`", name)
		}
	}
}
