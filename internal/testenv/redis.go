package testenv

import (
	"bufio"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Redis is a redis-server started for a test on a free loopback port with
// a temporary working directory. By default nothing is persisted (no RDB
// snapshots, no AOF), so Restart brings back an empty server, as a real
// Redis without persistence would come back; WithRedisAOF keeps the data.
type Redis struct {
	Addr     string // host:port
	Dir      string // working directory, kept across Restart
	User     string // ACL user of URL, "" for the default user
	Password string // password of URL, "" for none
	TLSAddr  string // host:port of the TLS port (WithRedisTLS), else ""

	t    testing.TB
	bin  string
	args []string
	mu   sync.Mutex
	proc *Process
}

// RedisOption configures StartRedis.
type RedisOption func(*redisOptions)

type redisOptions struct {
	aof      bool
	password string
	user     string
	userPass string
	args     []string
	tls      [3]string // cert, key, CA files
}

// WithRedisTLS adds a TLS port (Redis.TLSAddr, TLSURL) serving certFile and
// keyFile, with caFile as the CA; clients need no certificate of their own.
// The plain port stays open for the helper's readiness checks.
func WithRedisTLS(certFile, keyFile, caFile string) RedisOption {
	return func(o *redisOptions) { o.tls = [3]string{certFile, keyFile, caFile} }
}

// WithRedisAOF turns on the append-only file (appendfsync always), so data
// survives Stop/Restart.
func WithRedisAOF() RedisOption { return func(o *redisOptions) { o.aof = true } }

// WithRedisPassword sets requirepass: clients must AUTH with password.
func WithRedisPassword(password string) RedisOption {
	return func(o *redisOptions) { o.password = password }
}

// WithRedisUser adds an ACL user with every permission and the given
// password, and makes URL use it (redis://user:pass@…).
func WithRedisUser(user, password string) RedisOption {
	return func(o *redisOptions) { o.user, o.userPass = user, password }
}

// WithRedisArgs appends raw redis-server arguments (e.g. "--maxmemory",
// "10mb").
func WithRedisArgs(args ...string) RedisOption {
	return func(o *redisOptions) { o.args = append(o.args, args...) }
}

// StartRedis starts Debian's redis-server and waits until it answers PING.
// It is stopped at test cleanup.
func StartRedis(t testing.TB, opts ...RedisOption) *Redis {
	t.Helper()
	bin, ok := LookPath("redis-server")
	if !ok {
		Missing(t, "redis-server not found")
	}
	var o redisOptions
	for _, opt := range opts {
		opt(&o)
	}
	r := &Redis{
		Addr: "127.0.0.1:" + strconv.Itoa(FreePort(t)),
		Dir:  t.TempDir(),
		t:    t,
		bin:  bin,
	}
	_, port, _ := net.SplitHostPort(r.Addr)
	r.args = []string{
		"--port", port,
		"--bind", "127.0.0.1",
		"--dir", r.Dir,
		"--daemonize", "no",
		"--save", "",
		"--logfile", "",
		"--loglevel", "warning",
		"--databases", "16",
	}
	if o.aof {
		r.args = append(r.args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		r.args = append(r.args, "--appendonly", "no")
	}
	if o.password != "" {
		r.args = append(r.args, "--requirepass", o.password)
		r.Password = o.password
	}
	if o.user != "" {
		// One argument per ACL rule: redis-server quotes an argument with
		// spaces as a single token.
		r.args = append(r.args, "--user", o.user, "on", ">"+o.userPass, "~*", "&*", "+@all")
		r.User, r.Password = o.user, o.userPass
	}
	if o.tls[0] != "" {
		r.TLSAddr = "127.0.0.1:" + strconv.Itoa(FreePort(t))
		_, tport, _ := net.SplitHostPort(r.TLSAddr)
		r.args = append(r.args, "--tls-port", tport, "--tls-cert-file", o.tls[0], "--tls-key-file", o.tls[1],
			"--tls-ca-cert-file", o.tls[2], "--tls-auth-clients", "no")
	}
	r.args = append(r.args, o.args...)
	if err := r.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

// URL returns redis://[user:password@]addr/db for clients.
func (r *Redis) URL(db int) string {
	u := url.URL{Scheme: "redis", Host: r.Addr, Path: "/" + strconv.Itoa(db)}
	switch {
	case r.User != "":
		u.User = url.UserPassword(r.User, r.Password)
	case r.Password != "":
		u.User = url.UserPassword("", r.Password)
	}
	return u.String()
}

// TLSURL returns rediss://[user:password@]tls-addr/db (WithRedisTLS).
func (r *Redis) TLSURL(db int) string {
	u := url.URL{Scheme: "rediss", Host: r.TLSAddr, Path: "/" + strconv.Itoa(db)}
	switch {
	case r.User != "":
		u.User = url.UserPassword(r.User, r.Password)
	case r.Password != "":
		u.User = url.UserPassword("", r.Password)
	}
	return u.String()
}

func (r *Redis) start() error {
	cmd := exec.Command(r.bin, r.args...)
	cmd.Dir = r.Dir
	p := &Process{Cmd: cmd, done: make(chan struct{}), Addr: r.Addr, Dir: r.Dir}
	cmd.Stdout = lockedWriter{p}
	cmd.Stderr = lockedWriter{p}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testenv: start redis-server: %w", err)
	}
	go func() {
		_ = cmd.Wait()
		p.mu.Lock()
		p.exited = true
		p.mu.Unlock()
		close(p.done)
	}()
	r.mu.Lock()
	r.proc = p
	r.mu.Unlock()
	if err := r.waitReady(p, 20*time.Second); err != nil {
		r.stop(p, syscall.SIGKILL)
		return fmt.Errorf("%w\n%s", err, p.Output())
	}
	return nil
}

// waitReady polls with PING until the server answers +PONG (not -LOADING),
// or NOAUTH when a password is set: either way it is serving.
func (r *Redis) waitReady(p *Process, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		select {
		case <-p.Done():
			return fmt.Errorf("testenv: redis-server exited before it was ready")
		default:
		}
		if reply, err := ping(r.Addr); err == nil {
			if reply == "+PONG" || strings.HasPrefix(reply, "-NOAUTH") {
				return nil
			}
			last = reply
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testenv: redis at %s not ready after %v: %s", r.Addr, timeout, last)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not waiting for time
	}
}

func ping(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// Output returns what the current server process printed so far.
func (r *Redis) Output() string {
	r.mu.Lock()
	p := r.proc
	r.mu.Unlock()
	if p == nil {
		return ""
	}
	return p.Output()
}

// Stop stops the server (SIGTERM, SIGKILL after 10 s) and waits for it to
// exit; the port is free afterwards. Stopping a stopped server is a no-op.
func (r *Redis) Stop() { r.halt(syscall.SIGTERM) }

// Kill stops the server with SIGKILL: no shutdown save, clients see the
// connection drop.
func (r *Redis) Kill() { r.halt(syscall.SIGKILL) }

func (r *Redis) halt(sig syscall.Signal) {
	r.mu.Lock()
	p := r.proc
	r.proc = nil
	r.mu.Unlock()
	if p != nil {
		r.stop(p, sig)
	}
}

func (r *Redis) stop(p *Process, sig syscall.Signal) {
	if p.Cmd.Process == nil {
		return
	}
	_ = p.Cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return
	case <-time.After(10 * time.Second):
	}
	_ = p.Cmd.Process.Kill()
	<-p.done
}

// Restart starts the server again on the same port and directory
// (stopping it first if it runs) and waits until it is ready.
func (r *Redis) Restart() {
	r.t.Helper()
	r.Stop()
	if err := r.start(); err != nil {
		r.t.Fatal(err)
	}
}
