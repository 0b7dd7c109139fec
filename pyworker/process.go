package pyworker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/manta-ml/manta/api"
)

// process is one running interpreter: the pipes, the requests in flight
// (matched to answers by id), a reader and a watchdog. It never restarts
// itself; its worker slot does that.
type process struct {
	idx     int // worker slot number, for messages
	cfg     *Config
	cmd     *exec.Cmd
	pid     int
	in      *os.File // the worker's stdin (we write)
	out     *os.File // the worker's stdout (we read)
	started time.Time

	wmu  sync.Mutex // serialises frames onto in, and id assignment with them
	wbuf []byte

	mu       sync.Mutex
	nextID   uint64
	pending  map[uint64]*call
	lastRecv time.Time // when the last answer arrived
	err      error     // why it died; set once, with dead closed
	killWhy  string    // why we killed it, if we did
	closing  bool      // a shutdown we asked for

	dead      chan struct{} // closed once every pending call has its error
	exited    chan struct{} // closed when cmd.Wait returned
	waitErr   error
	stderrEOF chan struct{}
	tail      *tailBuffer
}

type call struct {
	ch      chan callResult // buffered: the reader never blocks on a caller
	what    string
	sent    time.Time
	timeout time.Duration
}

type callResult struct {
	resp *api.WorkerResponse
	err  error
}

// startProcess starts an interpreter running manta_worker and pings it.
// ctx bounds the start (the supervisor's lifetime and StartTimeout).
func startProcess(ctx context.Context, cfg *Config, idx int, pkgDir string) (*process, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd := exec.Command(cfg.Python, "-m", "manta_worker")
	cmd.Env = workerEnv(cfg, pkgDir)
	// `python -m` puts the working directory first on sys.path: run in the
	// package's own directory, so that no other manta_worker shadows it.
	cmd.Dir = pkgDir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	cmd.SysProcAttr = sysProcAttr()
	err = cmd.Start()
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("start python worker %d (%s): %w", idx, cfg.Python, err)
	}
	p := &process{
		idx:       idx,
		cfg:       cfg,
		cmd:       cmd,
		pid:       cmd.Process.Pid,
		in:        inW,
		out:       outR,
		started:   time.Now(),
		pending:   make(map[uint64]*call),
		lastRecv:  time.Now(),
		dead:      make(chan struct{}),
		exited:    make(chan struct{}),
		stderrEOF: make(chan struct{}),
		tail:      &tailBuffer{max: 4 << 10},
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	go p.copyStderr(errR)
	go p.readLoop()
	go p.watchdog()

	ping := &api.WorkerRequest{Kind: &api.WorkerRequest_Ping{Ping: &api.WorkerPing{}}}
	resp, err := p.call(ctx, ping, cfg.StartTimeout, "start")
	if err == nil && resp.Error != nil {
		err = fmt.Errorf("%s", resp.Error.Message)
	}
	if err == nil && resp.GetPong() == nil {
		err = errors.New("python worker answered its first ping without a pong")
	}
	if err != nil {
		p.kill("start failed")
		<-p.dead
		return nil, fmt.Errorf("python worker %d (%s): %w", idx, cfg.Python, err)
	}
	return p, nil
}

// workerEnv is the interpreter's environment: ours, the package on
// PYTHONPATH, one thread per numeric library (W workers share the cores)
// unless already set, and Config.Env last.
func workerEnv(cfg *Config, pkgDir string) []string {
	env := os.Environ()
	have := make(map[string]bool)
	pythonPath := os.Getenv("PYTHONPATH")
	for _, kv := range append(env, cfg.Env...) {
		if k, _, ok := strings.Cut(kv, "="); ok {
			have[k] = true
		}
	}
	var extra []string
	for _, kv := range cfg.Env {
		if v, ok := strings.CutPrefix(kv, "PYTHONPATH="); ok {
			pythonPath = v // merged below: the package must stay importable
			continue
		}
		extra = append(extra, kv)
	}
	pp := pkgDir
	if pythonPath != "" {
		pp += string(filepath.ListSeparator) + pythonPath
	}
	env = append(env, "PYTHONPATH="+pp, "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1",
		"MANTA_WORKER_REQUIRE="+strings.Join(cfg.Require, ","),
		"MANTA_WORKER_PRELOAD="+strings.Join(cfg.Preload, ","),
		"MANTA_WORKER_MAX_FRAME="+strconv.Itoa(cfg.MaxFrameBytes))
	for _, k := range []string{"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"} {
		if !have[k] {
			env = append(env, k+"=1")
		}
	}
	return append(env, extra...)
}

// call sends req and waits for its answer, ctx, or the process's death.
// timeout is how long the worker may spend on it once it is at the head
// of the queue; past that the watchdog kills the worker. A caller that
// gives up (ctx) leaves the request in the worker, which still answers it.
func (p *process) call(ctx context.Context, req *api.WorkerRequest, timeout time.Duration, what string) (*api.WorkerResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	req.Id = 0
	body, err := proto.MarshalOptions{}.MarshalAppend(getBuf(proto.Size(req)), req)
	defer putBuf(body)
	if err != nil {
		return nil, fmt.Errorf("%w: encode worker request: %v", api.ErrInternal, err)
	}
	if len(body)+16 > p.cfg.MaxFrameBytes {
		return nil, fmt.Errorf("%w: %s request of %d bytes exceeds the worker's frame limit of %d bytes (Config.MaxFrameBytes)", api.ErrBadInput, what, len(body), p.cfg.MaxFrameBytes)
	}
	c := &call{ch: make(chan callResult, 1), what: what, timeout: timeout}

	p.wmu.Lock()
	p.mu.Lock()
	if p.err != nil {
		err := p.err
		p.mu.Unlock()
		p.wmu.Unlock()
		return nil, &notSentError{err}
	}
	p.nextID++
	id := p.nextID
	c.sent = time.Now()
	p.pending[id] = c
	p.mu.Unlock()
	// The id goes first: protobuf fields may come in any order, so the
	// body is marshalled once, outside the lock.
	var idField [12]byte
	idb := protowire.AppendVarint(protowire.AppendTag(idField[:0], 1, protowire.VarintType), id)
	buf := appendFrameHeader(p.wbuf[:0], len(idb)+len(body))
	buf = append(buf, idb...)
	buf = append(buf, body...)
	_, werr := p.in.Write(buf)
	if cap(buf) <= 1<<16 {
		p.wbuf = buf[:0]
	}
	p.wmu.Unlock()
	if werr != nil {
		p.kill(fmt.Sprintf("write to worker failed: %v", werr))
	}

	select {
	case r := <-c.ch:
		return r.resp, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// readLoop reads answers and hands each to its caller. Any error ends the
// process: the stream cannot be trusted after it.
func (p *process) readLoop() {
	r := bufio.NewReaderSize(p.out, 64<<10)
	var buf []byte
	for {
		b, err := readFrame(r, buf, p.cfg.MaxFrameBytes)
		if err != nil {
			if errors.Is(err, io.EOF) {
				p.die("its stdout closed")
			} else {
				p.die(fmt.Sprintf("bad frame: %v", err))
			}
			return
		}
		if cap(b) <= 1<<20 {
			buf = b
		}
		resp := new(api.WorkerResponse)
		if err := proto.Unmarshal(b, resp); err != nil {
			p.die(fmt.Sprintf("bad frame: %v", err))
			return
		}
		p.mu.Lock()
		c := p.pending[resp.Id]
		delete(p.pending, resp.Id)
		p.lastRecv = time.Now()
		p.mu.Unlock()
		if c == nil {
			p.die(fmt.Sprintf("answer to unknown request %d", resp.Id))
			return
		}
		c.ch <- callResult{resp: resp}
	}
}

// watchdog kills the worker when the request at the head of its queue has
// run longer than its timeout.
func (p *process) watchdog() {
	period := min(p.cfg.CallTimeout, p.cfg.LoadTimeout, p.cfg.StartTimeout) / 4
	period = max(min(period, time.Second), 5*time.Millisecond)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-p.dead:
			return
		case <-t.C:
		}
		p.mu.Lock()
		var head *call
		var headID uint64
		for id, c := range p.pending {
			if head == nil || id < headID {
				head, headID = c, id
			}
		}
		var why string
		if head != nil {
			start := head.sent
			if p.lastRecv.After(start) {
				start = p.lastRecv
			}
			if d := time.Since(start); d > head.timeout {
				why = fmt.Sprintf("stuck: %s request ran %v, over its %v timeout", head.what, d.Round(time.Millisecond), head.timeout)
			}
		}
		p.mu.Unlock()
		if why != "" {
			p.kill(why)
		}
	}
}

// kill ends the process (SIGKILL); the reader then sees its stdout close
// and fails what is pending.
func (p *process) kill(why string) {
	p.mu.Lock()
	if p.killWhy == "" {
		p.killWhy = why
	}
	p.mu.Unlock()
	_ = p.cmd.Process.Kill()
}

// die is called once, by the reader, when the stream ends: it makes sure the
// process is gone, then fails every pending call with an error wrapping
// api.ErrInternal that says what happened.
func (p *process) die(reason string) {
	_ = p.cmd.Process.Kill()
	<-p.exited
	// The stderr pipe closes with the process (unless a child of the model
	// holds it): its last lines usually say why the worker died.
	select {
	case <-p.stderrEOF:
	case <-time.After(200 * time.Millisecond):
	}
	p.in.Close()
	p.out.Close()

	p.mu.Lock()
	what := reason
	if p.killWhy != "" {
		what = p.killWhy
	}
	status := "exited"
	if p.waitErr != nil {
		status = p.waitErr.Error()
	}
	var err error
	if p.closing {
		err = fmt.Errorf("%w: python worker %d (pid %d) shut down", api.ErrInternal, p.idx, p.pid)
	} else {
		msg := fmt.Sprintf("python worker %d (pid %d) died: %s (%s)", p.idx, p.pid, what, status)
		if p.killWhy == "" {
			if t := p.tail.lastLines(6); t != "" {
				msg += "; stderr: " + t
			}
		}
		err = fmt.Errorf("%w: %s", api.ErrInternal, msg)
	}
	p.err = err
	pending := p.pending
	p.pending = nil
	p.mu.Unlock()
	// The worker runs requests in id order: only the lowest pending one can
	// have started. The others are marked, so that a load can be retried.
	var head uint64
	for id := range pending {
		if head == 0 || id < head {
			head = id
		}
	}
	for id, c := range pending {
		if id == head {
			c.ch <- callResult{err: err}
		} else {
			c.ch <- callResult{err: &notStartedError{err}}
		}
	}
	close(p.dead)
}

// notStartedError is the death of a worker before it began a request.
type notStartedError struct{ err error }

func (e *notStartedError) Error() string { return e.err.Error() + " (before the request started)" }
func (e *notStartedError) Unwrap() error { return e.err }

// notSentError is a call on a process already dead: the request was not
// sent, so it can go to the next process.
type notSentError struct{ err error }

func (e *notSentError) Error() string { return e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

// notStarted reports whether err says the request never ran (not sent, or
// queued behind the request that the worker died on).
func notStarted(err error) bool {
	var ns *notStartedError
	var nsent *notSentError
	return errors.As(err, &ns) || errors.As(err, &nsent)
}

// notSent reports whether err says the request was never sent.
func notSent(err error) bool {
	var nsent *notSentError
	return errors.As(err, &nsent)
}

// deathErr returns why the process died (nil while it lives).
func (p *process) deathErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// shutdown asks the worker to exit, then makes sure it has.
func (p *process) shutdown(grace time.Duration) {
	p.mu.Lock()
	p.closing = true
	alive := p.err == nil
	p.mu.Unlock()
	if alive {
		// One deadline for the whole goodbye: a worker busy with a long
		// batch is killed when it runs out.
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		req := &api.WorkerRequest{Kind: &api.WorkerRequest_Shutdown{Shutdown: &api.WorkerShutdown{}}}
		_, _ = p.call(ctx, req, grace, "shutdown")
		select {
		case <-p.exited:
		case <-ctx.Done():
		}
		cancel()
	}
	_ = p.cmd.Process.Kill()
	<-p.dead
}

// copyStderr forwards the worker's stderr line by line, prefixed, and keeps
// its tail for error messages.
func (p *process) copyStderr(r *os.File) {
	defer close(p.stderrEOF)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	prefix := fmt.Sprintf("pyworker[%d pid %d]: ", p.idx, p.pid)
	var line bytes.Buffer
	for sc.Scan() {
		p.tail.add(sc.Text())
		line.Reset()
		line.WriteString(prefix)
		line.Write(sc.Bytes())
		line.WriteByte('\n')
		_, _ = p.cfg.Stderr.Write(line.Bytes())
	}
	// A line over the scanner's limit: keep draining so the worker never
	// blocks on a full stderr pipe.
	_, _ = io.Copy(io.Discard, r)
}

// tailBuffer keeps the last max bytes of lines.
type tailBuffer struct {
	mu    sync.Mutex
	max   int
	lines []string
	size  int
}

func (t *tailBuffer) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(s) > t.max {
		s = s[len(s)-t.max:]
	}
	t.lines = append(t.lines, s)
	t.size += len(s)
	for t.size > t.max && len(t.lines) > 1 {
		t.size -= len(t.lines[0])
		t.lines = t.lines[1:]
	}
}

func (t *tailBuffer) lastLines(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.lines
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}
