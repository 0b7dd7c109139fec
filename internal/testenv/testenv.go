// Package testenv starts the real servers that Manta's tests run against
// (etcd, Redis, MinIO, the Python interpreter) on free loopback ports in
// temporary directories, and stops them at test cleanup.
//
// When a server's binary is missing the test is skipped, unless the CI
// environment variable is set: then it FAILS, so a CI run can never pass by
// skipping what it was meant to test. `make setup` installs everything.
package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/manta-ml/manta/internal/localbin"
)

// InCI reports whether the CI environment variable is set.
func InCI() bool { return os.Getenv("CI") != "" }

// Missing skips the test (or fails it in CI) because what is missing.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...) + " (run `make setup`)"
	if InCI() {
		t.Fatalf("testenv: %s; CI is set, so this is a failure, not a skip", msg)
	}
	t.Skipf("testenv: %s", msg)
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// RepoRoot returns the root of the repository (the directory with go.mod).
func RepoRoot() string { return localbin.RepoRoot() }

// LookPath finds a binary on PATH or in the project-local bin dir (.bin).
func LookPath(name string) (string, bool) { return localbin.LookPath(name) }

// WaitTCP waits until addr accepts TCP connections or the timeout passes.
func WaitTCP(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testenv: %s not reachable after %v: %w", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, not waiting for time
	}
}

// Process is a server process started for a test.
type Process struct {
	Cmd  *exec.Cmd
	Addr string
	Dir  string

	mu     sync.Mutex
	out    bytes.Buffer
	done   chan struct{}
	exited bool
}

// Output returns what the process printed so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

type lockedWriter struct{ p *Process }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	if w.p.out.Len() < 1<<20 {
		w.p.out.Write(b)
	}
	return len(b), nil
}

// Start starts cmd with its output captured, and registers its stop at cleanup.
func Start(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Cmd: cmd, done: make(chan struct{})}
	cmd.Stdout = lockedWriter{p}
	cmd.Stderr = lockedWriter{p}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start %s: %v", cmd.Path, err)
	}
	go func() {
		_ = cmd.Wait()
		p.mu.Lock()
		p.exited = true
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(p.Stop)
	return p
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stop kills the process and waits for it.
func (p *Process) Stop() {
	if p.Cmd.Process != nil {
		_ = p.Cmd.Process.Kill()
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// Etcd is a running etcd server.
type Etcd struct {
	*Process
	Endpoint string // host:port for clients
}

// StartEtcd starts Debian's etcd-server on free loopback ports with a
// temporary data directory.
func StartEtcd(t testing.TB) *Etcd {
	t.Helper()
	bin, ok := LookPath("etcd")
	if !ok {
		Missing(t, "etcd not found")
	}
	dir := t.TempDir()
	cport, pport := FreePort(t), FreePort(t)
	client := "http://127.0.0.1:" + strconv.Itoa(cport)
	peer := "http://127.0.0.1:" + strconv.Itoa(pport)
	cmd := exec.Command(bin,
		"--name", "testenv",
		"--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "testenv="+peer,
		"--log-level", "error")
	cmd.Env = append(os.Environ(), "ETCD_UNSUPPORTED_ARCH="+runtime.GOARCH)
	p := Start(t, cmd)
	addr := "127.0.0.1:" + strconv.Itoa(cport)
	if err := WaitTCP(addr, 20*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, p.Output())
	}
	p.Addr = addr
	return &Etcd{Process: p, Endpoint: addr}
}
