package clusterbench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/manta-ml/manta/internal/localbin"
)

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("clusterbench: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func numCPU() int { return runtime.NumCPU() }

// proc is a child process: its output goes to a log file and through
// watch, line by line.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}

	mu       sync.Mutex
	tail     []string // last lines
	warns    int
	errs     int
	samples  []string
	http     string
	member   string
	ingest   bool
	ready    chan struct{} // closed when watch says so
	readyOne sync.Once
	killedAt int64 // unix nanos of a kill -9 (0: none)
}

// start starts a process with its stdout and stderr in logPath; watch (may
// be nil) sees every line under p.mu.
func start(name, logPath string, cmd *exec.Cmd, watch func(p *proc, line string)) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		f.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	// Children die with this process, even when it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		pw.Close()
		pr.Close()
		f.Close()
		return nil, fmt.Errorf("clusterbench: start %s (%s): %w", name, cmd.Path, err)
	}
	pw.Close()
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{}), ready: make(chan struct{})}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		defer f.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			l := sc.Text()
			_, _ = io.WriteString(f, l+"\n")
			p.mu.Lock()
			p.tail = append(p.tail, l)
			if len(p.tail) > 40 {
				p.tail = p.tail[len(p.tail)-40:]
			}
			if strings.Contains(l, "level=WARN") {
				p.warns++
				if len(p.samples) < 3 {
					p.samples = append(p.samples, l)
				}
			} else if strings.Contains(l, "level=ERROR") {
				p.errs++
				if len(p.samples) < 3 {
					p.samples = append(p.samples, l)
				}
			}
			if watch != nil {
				watch(p, l)
			}
			p.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, pr)
		pr.Close()
	}()
	go func() {
		_ = cmd.Wait()
		<-scanned
		close(p.done)
	}()
	return p, nil
}

func (p *proc) markReady() { p.readyOne.Do(func() { close(p.ready) }) }

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

func (p *proc) logCounts() (warns, errs int, samples []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.warns, p.errs, append([]string(nil), p.samples...)
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits (bounded) for the process to be gone.
func (p *proc) kill() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// stop sends SIGTERM, waits up to grace, then kills.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.done:
	case <-time.After(grace):
		p.kill()
	}
}

// waitReady waits until the process says it is ready, exits, or d passes.
func (p *proc) waitReady(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.ready:
		return nil
	case <-p.done:
		return fmt.Errorf("clusterbench: %s exited before it was ready:\n%s", p.name, p.output())
	case <-t.C:
		return fmt.Errorf("clusterbench: %s not ready after %v:\n%s", p.name, d, p.output())
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitTCP waits until addr accepts connections (or p exits, or d passes).
func waitTCP(ctx context.Context, p *proc, addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if p.exited() {
			return fmt.Errorf("clusterbench: %s exited:\n%s", p.name, p.output())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("clusterbench: %s not reachable on %s after %v: %v\n%s", p.name, addr, d, err, p.output())
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startEtcd starts Debian's etcd on free loopback ports; it returns the
// client endpoint host:port.
func (b *bench) startEtcd(ctx context.Context) (string, error) {
	bin, ok := localbin.LookPath("etcd")
	if !ok {
		return "", errors.New("clusterbench: etcd not found on PATH or in .bin (apt-get install etcd-server, or make setup)")
	}
	cport, err := freePort()
	if err != nil {
		return "", err
	}
	pport, err := freePort()
	if err != nil {
		return "", err
	}
	client := "http://127.0.0.1:" + strconv.Itoa(cport)
	peer := "http://127.0.0.1:" + strconv.Itoa(pport)
	cmd := exec.Command(bin,
		"--name", "clusterbench",
		"--data-dir", filepath.Join(b.dir, "etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "clusterbench="+peer,
		"--log-level", "error")
	cmd.Env = append(os.Environ(), "ETCD_UNSUPPORTED_ARCH="+runtime.GOARCH)
	p, err := start("etcd", filepath.Join(b.dir, "logs", "etcd.log"), cmd, nil)
	if err != nil {
		return "", err
	}
	b.infra = append(b.infra, p)
	addr := "127.0.0.1:" + strconv.Itoa(cport)
	if err := waitTCP(ctx, p, addr, 20*time.Second); err != nil {
		return "", err
	}
	return addr, nil
}

// startRedis starts redis-server (no persistence) on a free loopback port.
func (b *bench) startRedis(ctx context.Context) (string, error) {
	bin, ok := localbin.LookPath("redis-server")
	if !ok {
		return "", errors.New("clusterbench: redis-server not found on PATH or in .bin (apt-get install redis-server, or make setup)")
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(b.dir, "redis")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--daemonize", "no", "--save", "", "--appendonly", "no", "--logfile", "", "--loglevel", "warning")
	cmd.Dir = dir
	p, err := start("redis-server", filepath.Join(b.dir, "logs", "redis.log"), cmd, nil)
	if err != nil {
		return "", err
	}
	b.infra = append(b.infra, p)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := waitTCP(ctx, p, addr, 20*time.Second); err != nil {
		return "", err
	}
	return addr, nil
}

// startMember starts `manta serve` number i (1-based) and waits until it
// serves HTTP and ingests the stream.
func (b *bench) startMember(ctx context.Context, i int, etcd, redisAddr string) (*proc, error) {
	name := fmt.Sprintf("member-%d", i)
	args := []string{"serve", "--cluster", "etcd", "--etcd", etcd, "--store", b.store,
		"--redis", "redis://" + redisAddr + "/0", "--http", "127.0.0.1:0", "--idle", "1h", "--member", name,
		// 16 members on 2 cores stall past a 3 s lease (then the others
		// block the member for good): the bench runs with 30 s.
		"--etcd-ttl", "30s"}
	if b.cfg.Budget != "" {
		args = append(args, "--budget", b.cfg.Budget)
	}
	cmd := exec.Command(b.cfg.MantaBin, args...)
	cmd.Dir = b.dir
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MANTA_") { // nothing of the caller's configuration leaks in
			env = append(env, kv)
		}
	}
	actLog := filepath.Join(b.dir, "logs", name+".activations")
	// A kept --dir may hold the log of an earlier run: members append, and
	// the overlap check must read this run's activations only.
	if err := os.Remove(actLog); err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	env = append(env, "MANTA_LOG_LEVEL=warn", "MANTA_ACTIVATION_LOG="+actLog)
	if b.cfg.Profile {
		env = append(env, "MANTA_PPROF=1")
	}
	cmd.Env = env
	p, err := start(name, filepath.Join(b.dir, "logs", name+".log"), cmd, func(p *proc, l string) {
		if strings.HasPrefix(l, "manta: member ") {
			p.member = strings.Fields(l)[2]
		}
		if i := strings.Index(l, "http://"); i >= 0 && p.http == "" {
			p.http = strings.Fields(l[i+len("http://"):])[0]
		}
		if strings.HasPrefix(l, "manta: ingesting Redis streams") {
			p.ingest = true
		}
		if p.http != "" && p.ingest {
			p.markReady()
		}
	})
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.members[i-1] = p
	b.actLogs[i-1] = actLog
	b.mu.Unlock()
	if err := p.waitReady(ctx, 90*time.Second); err != nil {
		return p, err
	}
	return p, nil
}

// stopAll stops the members, then Redis and etcd. Bounded.
func (b *bench) stopAll() {
	b.mu.Lock()
	members := append([]*proc(nil), b.members...)
	infra := append([]*proc(nil), b.infra...)
	b.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range members {
		if m == nil {
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); m.stop(5 * time.Second) }()
	}
	wg.Wait()
	for i := len(infra) - 1; i >= 0; i-- {
		infra[i].stop(5 * time.Second)
	}
}

// cpuTicks is a process's utime+stime in clock ticks (/proc/PID/stat).
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("clusterbench: /proc/%d/stat: no comm", pid)
	}
	f := strings.Fields(s[i+1:])
	// after the comm: state(3) ppid(4) … utime is field 14, stime 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("clusterbench: /proc/%d/stat: short", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("clusterbench: /proc/%d/stat: bad times", pid)
	}
	return ut + st, nil
}

// clockTick is USER_HZ, 100 on every Linux ABI Go supports.
const clockTick = 100

// rss is a process's VmRSS in bytes (/proc/PID/status).
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				kb, err := strconv.ParseInt(f[1], 10, 64)
				if err != nil {
					return 0, err
				}
				return kb << 10, nil
			}
		}
	}
	return 0, fmt.Errorf("clusterbench: /proc/%d/status: no VmRSS", pid)
}
