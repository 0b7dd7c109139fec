package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// MinIO is a MinIO server started for a test: one drive in a temporary
// directory, listening on a free loopback port, with fixed root credentials.
// Stop and Restart take it away and bring it back on the same port and data
// directory, so tests can exercise a store outage.
type MinIO struct {
	Endpoint  string // host:port for clients (no scheme)
	AccessKey string // root user
	SecretKey string // root password
	Dir       string // data directory, kept across Restart
	CAFile    string // the CA of the server's certificate (WithMinIOTLS), else ""

	t    testing.TB
	bin  string
	env  []string
	mu   sync.Mutex
	proc *Process
}

// MinIOOption configures StartMinIO.
type MinIOOption func(*minioOptions)

type minioOptions struct {
	env []string
	tls [3][]byte // certificate, key, CA (PEM)
}

// WithMinIOTLS serves https with the certificate and key (PEM) signed by
// the CA (PEM); URL then starts with https:// and CAFile names the CA.
func WithMinIOTLS(certPEM, keyPEM, caPEM []byte) MinIOOption {
	return func(o *minioOptions) { o.tls = [3][]byte{certPEM, keyPEM, caPEM} }
}

// WithMinIOEnv sets an environment variable of the server process (e.g. a
// MINIO_NOTIFY_* target configuration, read only at server start).
func WithMinIOEnv(key, value string) MinIOOption {
	return func(o *minioOptions) { o.env = append(o.env, key+"="+value) }
}

// WithMinIOWebhook enables MinIO's webhook notification target id, posting
// events to endpoint (an http:// URL). Buckets then subscribe to it with the
// ARN arn:minio:sqs::<id>:webhook. The endpoint should be listening before
// the server starts: MinIO probes it at start-up.
func WithMinIOWebhook(id, endpoint string) MinIOOption {
	return func(o *minioOptions) {
		o.env = append(o.env,
			"MINIO_NOTIFY_WEBHOOK_ENABLE_"+id+"=on",
			"MINIO_NOTIFY_WEBHOOK_ENDPOINT_"+id+"="+endpoint)
	}
}

// MinIOWebhookARN is the ARN a bucket notification uses for the webhook
// target id configured with WithMinIOWebhook.
func MinIOWebhookARN(id string) string { return "arn:minio:sqs::" + id + ":webhook" }

// StartMinIO starts a MinIO server (the binary from LookPath("minio"), i.e.
// .bin/minio as installed by `make setup`) and waits until it is live. It
// is stopped at test cleanup.
func StartMinIO(t testing.TB, opts ...MinIOOption) *MinIO {
	t.Helper()
	bin, ok := LookPath("minio")
	if !ok {
		Missing(t, "minio server not found")
	}
	var o minioOptions
	for _, opt := range opts {
		opt(&o)
	}
	m := &MinIO{
		Endpoint:  "127.0.0.1:" + strconv.Itoa(FreePort(t)),
		AccessKey: "manta-test",
		SecretKey: "manta-test-secret-0123456789",
		Dir:       t.TempDir(),
		t:         t,
		bin:       bin,
		env:       o.env,
	}
	if o.tls[0] != nil {
		certs := filepath.Join(m.Dir, "certs")
		if err := os.MkdirAll(filepath.Join(certs, "CAs"), 0o755); err != nil {
			t.Fatal(err)
		}
		m.CAFile = filepath.Join(certs, "CAs", "ca.crt")
		for path, b := range map[string][]byte{
			filepath.Join(certs, "public.crt"): o.tls[0], filepath.Join(certs, "private.key"): o.tls[1], m.CAFile: o.tls[2],
		} {
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := m.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

// URL returns the http:// base URL of the server.
func (m *MinIO) URL() string {
	if m.CAFile != "" {
		return "https://" + m.Endpoint
	}
	return "http://" + m.Endpoint
}

// httpClient is a client for the server's health checks (trusting CAFile).
func (m *MinIO) httpClient() *http.Client {
	c := &http.Client{Timeout: time.Second}
	if m.CAFile != "" {
		pool := x509.NewCertPool()
		if b, err := os.ReadFile(m.CAFile); err == nil {
			pool.AppendCertsFromPEM(b)
		}
		c.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	return c
}

func (m *MinIO) start() error {
	// Console and certificates would otherwise use a second fixed port and
	// the user's ~/.minio; keep everything in the test's directory.
	console := "127.0.0.1:" + strconv.Itoa(FreePort(m.t))
	cmd := exec.Command(m.bin, "server",
		"--address", m.Endpoint,
		"--console-address", console,
		"--certs-dir", filepath.Join(m.Dir, "certs"),
		"--quiet",
		filepath.Join(m.Dir, "data"))
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+m.AccessKey,
		"MINIO_ROOT_PASSWORD="+m.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
	)
	cmd.Env = append(cmd.Env, m.env...)
	p := &Process{Cmd: cmd, done: make(chan struct{}), Addr: m.Endpoint, Dir: m.Dir}
	cmd.Stdout = lockedWriter{p}
	cmd.Stderr = lockedWriter{p}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testenv: start minio: %w", err)
	}
	go func() {
		_ = cmd.Wait()
		p.mu.Lock()
		p.exited = true
		p.mu.Unlock()
		close(p.done)
	}()
	m.mu.Lock()
	m.proc = p
	m.mu.Unlock()
	if err := m.waitLive(p, 60*time.Second); err != nil {
		m.stop(p)
		return fmt.Errorf("%w\n%s", err, p.Output())
	}
	return nil
}

// waitLive polls until the server is live (/minio/health/live answers
// 200) and initialized: live answers 200 even before the object layer,
// bucket metadata and IAM are up (it only sets x-minio-server-status), and
// S3 calls fail until then, so /minio/health/cluster must answer 200 too.
func (m *MinIO) waitLive(p *Process, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if err := WaitTCP(m.Endpoint, timeout); err != nil {
		return err
	}
	client := m.httpClient()
	check := func(path string) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.URL()+path, nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", path, resp.Status)
		}
		if st := resp.Header.Get("X-Minio-Server-Status"); st != "" {
			return fmt.Errorf("%s: server status %s", path, st)
		}
		return nil
	}
	for {
		err := check("/minio/health/live")
		if err == nil {
			err = check("/minio/health/cluster")
		}
		if err == nil {
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("testenv: minio exited before it was ready")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testenv: minio at %s not ready after %v: %v", m.Endpoint, timeout, err)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, not waiting for time
	}
}

// Output returns what the current server process printed so far.
func (m *MinIO) Output() string {
	m.mu.Lock()
	p := m.proc
	m.mu.Unlock()
	if p == nil {
		return ""
	}
	return p.Output()
}

// Stop stops the server (SIGTERM, then SIGKILL after 10 s) and waits for it
// to exit; the port is free afterwards. Stopping a stopped server is a no-op.
func (m *MinIO) Stop() {
	m.mu.Lock()
	p := m.proc
	m.proc = nil
	m.mu.Unlock()
	if p != nil {
		m.stop(p)
	}
}

func (m *MinIO) stop(p *Process) {
	if p.Cmd.Process == nil {
		return
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(10 * time.Second):
	}
	_ = p.Cmd.Process.Kill()
	<-p.done
}

// Restart starts the server again on the same port and data directory
// (stopping it first if it is running) and waits until it is live.
func (m *MinIO) Restart() {
	m.t.Helper()
	m.Stop()
	if err := m.start(); err != nil {
		m.t.Fatal(err)
	}
}

// Signal sends sig to the running server (SIGSTOP/SIGCONT pause and resume
// it: the port stays open but nothing answers).
func (m *MinIO) Signal(sig os.Signal) error {
	m.mu.Lock()
	p := m.proc
	m.mu.Unlock()
	if p == nil || p.Cmd.Process == nil {
		return fmt.Errorf("testenv: minio is not running")
	}
	return p.Cmd.Process.Signal(sig)
}
