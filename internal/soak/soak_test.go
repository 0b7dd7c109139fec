package soak

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/internal/clusterbench"
	"github.com/manta-ml/manta/internal/modelgen"
	"github.com/manta-ml/manta/internal/testenv"
	"github.com/manta-ml/manta/modelhost"
	"github.com/manta-ml/manta/modelhost/s3store"
	_ "github.com/manta-ml/manta/pyworker" // the python runtime the soak's models use (a driver: the SDK does not link it)
)

const (
	nLinear  = 1000
	nPython  = 8
	budget   = 8 << 20
	rate     = 200 // requests per second
	stream   = "manta:requests"
	results  = "manta:results"
	minIdle  = "3s"
	settling = 2 * time.Minute
	// handOverSlack is the longest overlap of two activations of one
	// identity accepted as a hand-over rather than a duplicate.
	handOverSlack = 250 * time.Millisecond
)

type member struct {
	name, http, log string
	args            []string
	env             []string
	kills           []int64  // unix nanos of each SIGKILL
	secrets         []string // credentials that must never appear in the member's output
	leakMu          sync.Mutex
	leaked          map[string]bool // which of them did (by name, never the value)

	mu     sync.Mutex
	cmd    *exec.Cmd
	up     bool
	killed int
}

func (m *member) start(bin string) error {
	cmd := exec.Command(bin, append([]string{"serve"}, m.args...)...)
	cmd.Env = append(os.Environ(), m.env...)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %v", m.name, err)
	}
	ready := make(chan struct{})
	var linesMu sync.Mutex
	var lines []string
	go func() {
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		for sc.Scan() {
			linesMu.Lock()
			if len(lines) < 50 {
				lines = append(lines, sc.Text())
			}
			linesMu.Unlock()
			for i, sec := range m.secrets {
				if strings.Contains(sc.Text(), sec) {
					m.leakMu.Lock()
					if m.leaked == nil {
						m.leaked = map[string]bool{}
					}
					m.leaked[secretNames[i]] = true
					m.leakMu.Unlock()
				}
			}
			if strings.Contains(sc.Text(), "http://") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(120 * time.Second):
		_ = cmd.Process.Kill()
		linesMu.Lock()
		defer linesMu.Unlock()
		return fmt.Errorf("%s did not start:\n%s", m.name, strings.Join(lines, "\n"))
	}
	m.mu.Lock()
	m.cmd, m.up = cmd, true
	m.mu.Unlock()
	return nil
}

func (m *member) kill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil && m.up {
		_ = m.cmd.Process.Signal(syscall.SIGKILL)
		m.kills = append(m.kills, time.Now().UnixNano())
		_ = m.cmd.Wait()
		m.up = false
		m.killed++
	}
}

func (m *member) pid() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil || !m.up {
		return 0
	}
	return m.cmd.Process.Pid
}

// pythonWorkers lists the pids of the Python worker processes of pid.
func pythonWorkers(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			if cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); strings.Contains(string(cmdline), "python") {
				out = append(out, p)
			}
		}
	}
	return out
}

// secretNames name the credentials of member.secrets, in order.
var secretNames = []string{"MinIO secret key", "Redis password"}

func status(addr string) (*manta.Status, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + "/v1/status")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st manta.Status
	return &st, json.NewDecoder(resp.Body).Decode(&st)
}

func TestSoak(t *testing.T) {
	if testing.Short() || os.Getenv("MANTA_SOAK") == "" {
		t.Skip("the chaos soak runs with MANTA_SOAK=1 (make soak)")
	}
	dur := 60 * time.Second
	if d, err := time.ParseDuration(os.Getenv("SOAK_DURATION")); err == nil && d > 0 {
		dur = d
	}
	seed := uint64(1)
	if s, err := strconv.ParseUint(os.Getenv("SOAK_SEED"), 10, 64); err == nil {
		seed = s
	}
	rng := rand.New(rand.NewPCG(seed, 42))
	ctx := context.Background()
	python := testenv.Python(t)
	etcd := testenv.StartEtcd(t)
	// Redis with an ACL user; members read its password from a file, MinIO's
	// secret key from another (as from mounted secrets), and talk to each
	// other over mutual TLS.
	redisPass := fmt.Sprintf("soak-redis-%d-pw", rng.Uint64())
	rd := testenv.StartRedis(t, testenv.WithRedisAOF(), testenv.WithRedisUser("soak", redisPass))
	mi := testenv.StartMinIO(t)

	// the store: 1,000 linear models and a few sklearn models in MinIO
	cfg := s3store.DefaultConfig()
	cfg.Endpoint, cfg.Secure, cfg.Bucket = mi.Endpoint, false, "models"
	cfg.AccessKey, cfg.SecretKey = mi.AccessKey, mi.SecretKey
	cfg.CacheDir = t.TempDir()
	st, err := s3store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	stage := t.TempDir()
	features := make([]int, nLinear)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	var pushErr atomic.Value
	for i := 0; i < nLinear; i++ {
		features[i] = 2 + rng.IntN(200)
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := pushLinear(ctx, st, stage, fmt.Sprintf("lin-%04d", i), features[i], 1); err != nil {
				pushErr.Store(err)
			}
		}(i)
	}
	wg.Wait()
	if e := pushErr.Load(); e != nil {
		t.Fatal(e)
	}
	pyDir := t.TempDir()
	script := filepath.Join(testenv.RepoRoot(), "pyworker", "testdata", "make_models.py")
	if out, err := exec.Command(python, script, pyDir, "reg").CombinedOutput(); err != nil {
		t.Fatalf("make python models: %v %s", err, out)
	}
	for i := 0; i < nPython; i++ {
		if err := pushPython(ctx, st, filepath.Join(pyDir, "reg"), fmt.Sprintf("py-%d", i)); err != nil {
			t.Fatal(err)
		}
	}

	bin := filepath.Join(t.TempDir(), "manta")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/manta-ml/manta/cmd/manta").CombinedOutput(); err != nil {
		t.Fatalf("build: %v %s", err, out)
	}
	storeURL := fmt.Sprintf("s3://models?endpoint=%s&secure=false", mi.Endpoint)
	members := make([]*member, 3)
	logDir := t.TempDir()
	secretDir := t.TempDir()
	s3Secret, redisSecret := filepath.Join(secretDir, "s3-secret-key"), filepath.Join(secretDir, "redis-password")
	if err := os.WriteFile(s3Secret, []byte(mi.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(redisSecret, []byte(redisPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	certDir := t.TempDir()
	if out, err := exec.Command(bin, "certs", certDir, "--members", "m0,m1,m2").CombinedOutput(); err != nil {
		t.Fatalf("manta certs: %v %s", err, out)
	}
	for i := range members {
		m := &member{name: fmt.Sprintf("m%d", i), http: fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))}
		m.log = filepath.Join(logDir, m.name+".activations")
		m.secrets = []string{mi.SecretKey, redisPass}
		m.args = []string{"--cluster", "etcd", "--etcd", etcd.Endpoint, "--store", storeURL + "&cache_dir=" + t.TempDir(),
			"--redis-min-idle", minIdle, "--redis-inflight", "128", "--http", m.http,
			"--budget", strconv.Itoa(budget), "--member", m.name, "--idle", "5s",
			"--tls-cert", filepath.Join(certDir, m.name+".pem"), "--tls-key", filepath.Join(certDir, m.name+"-key.pem"),
			"--tls-ca", filepath.Join(certDir, "ca.pem")}
		// No credential on a command line (ps shows those): the Redis URL
		// names only the user.
		m.env = []string{"MANTA_PPROF=1", "MANTA_ACTIVATION_LOG=" + m.log, "MANTA_PYTHON=" + python,
			"MANTA_REDIS=redis://soak@" + rd.Addr + "/0", "MANTA_REDIS_PASSWORD_FILE=" + redisSecret,
			"MANTA_S3_ACCESS_KEY=" + mi.AccessKey, "MANTA_S3_SECRET_KEY_FILE=" + s3Secret}
		if err := m.start(bin); err != nil {
			t.Fatal(err)
		}
		members[i] = m
		t.Cleanup(m.kill)
	}

	opt, _ := redis.ParseURL(rd.URL(0))
	opt.MaxRetries = 10
	rc := redis.NewClient(opt)
	defer rc.Close()

	// consumer: every result, by request id
	var resMu sync.Mutex
	seen := map[string]int{}
	codes := map[string]int{}
	stopConsumer := make(chan struct{})
	consumerDone := make(chan struct{})
	go func() {
		defer close(consumerDone)
		last := "0"
		for {
			select {
			case <-stopConsumer:
				return
			default:
			}
			s, err := rc.XRead(ctx, &redis.XReadArgs{Streams: []string{results, last}, Count: 2000, Block: 500 * time.Millisecond}).Result()
			if err != nil {
				continue // redis restarting, or nothing new
			}
			resMu.Lock()
			for _, msg := range s[0].Messages {
				last = msg.ID
				seen[fmt.Sprint(msg.Values["id"])]++
				code := "ok"
				if e := fmt.Sprint(msg.Values["error"]); e != "" {
					code = strings.SplitN(e, ":", 2)[0]
				}
				codes[code]++
			}
			resMu.Unlock()
		}
	}()

	// producer: a steady stream over all models (Zipf-ish), 5% Python
	var sent atomic.Int64
	var sendErrs atomic.Int64
	stopProducer := make(chan struct{})
	producerDone := make(chan struct{})
	zipf := rand.NewZipf(rand.New(rand.NewPCG(seed, 7)), 1.05, 1, nLinear-1)
	// The producer has its own generator: the fault injector's schedule
	// then depends on the seed alone (and no rand.Rand is shared between
	// goroutines).
	prng := rand.New(rand.NewPCG(seed, 9))
	go func() {
		defer close(producerDone)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopProducer:
				return
			case <-tick.C:
			}
			for k := 0; k < rate/20; k++ {
				id := "q-" + strconv.FormatInt(sent.Load(), 10)
				var model, payload string
				if prng.IntN(20) == 0 {
					model, payload = fmt.Sprintf("py-%d", prng.IntN(nPython)), `{"features":[1,2,3,4,5]}`
				} else {
					i := int(zipf.Uint64())
					model, payload = fmt.Sprintf("lin-%04d", i), onesPayload(features[i])
				}
				err := rc.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: map[string]any{"model": model, "id": id, "payload": payload}}).Err()
				if err != nil {
					sendErrs.Add(1) // Redis is restarting: this id was never sent
					break
				}
				sent.Add(1)
			}
		}
	}()

	// sampler: double activations, memory against budget, leaks on m0
	var maxUsed, maxModel int64
	var m0Start, m0End [2]int64
	var sampleMu sync.Mutex
	sampleOnce := func(record bool) {
		sampleMu.Lock()
		defer sampleMu.Unlock()
		where := map[string]string{}
		for _, m := range members {
			if m.pid() == 0 {
				continue
			}
			s, err := status(m.http)
			if err != nil {
				continue
			}
			for _, info := range s.Members {
				if info.HTTP != m.http && !strings.HasSuffix(info.HTTP, m.http) {
					continue
				}
				if info.UsedBytes > maxUsed {
					maxUsed = info.UsedBytes
				}
				for _, a := range info.ActiveModels {
					where[a] = m.name
				}
				if m == members[0] {
					m0End = [2]int64{info.Goroutines, info.OpenFDs}
				}
			}
		}
	}
	stopSampler := make(chan struct{})
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopSampler:
				return
			case <-t.C:
				sampleOnce(true)
			}
		}
	}()

	// faults, from the seed; members[0] is never killed (the leak baseline)
	faults := map[string]int{}
	start := time.Now()
	// warm-up: the first faults come once the cluster serves
	nResults := func() int {
		resMu.Lock()
		defer resMu.Unlock()
		return len(seen)
	}
	testenv.WaitFor(t, 2*time.Minute, "the warm-up's first results", func() bool { return nResults() >= 2*rate })
	sampleOnce(false)
	sampleMu.Lock()
	m0Start = m0End
	sampleMu.Unlock()
	version := map[string]int{}
	var deck []int
	for time.Since(start) < dur {
		time.Sleep(time.Duration(3000+rng.IntN(3000)) * time.Millisecond) // the pace of the fault injector
		// Kinds come from a shuffled deck, so that every kind is
		// injected once in each five faults: the 60 s run in CI sees all.
		if len(deck) == 0 {
			deck = rng.Perm(5)
		}
		k := deck[0]
		deck = deck[1:]
		switch k {
		case 0:
			m := members[1+rng.IntN(2)]
			m.kill()
			faults["kill -9 member"]++
			go func() {
				time.Sleep(2 * time.Second) // the member stays dead for a while
				if err := m.start(bin); err != nil {
					t.Errorf("restart: %v", err)
				}
			}()
		case 1:
			m := members[rng.IntN(3)]
			if ws := pythonWorkers(m.pid()); len(ws) > 0 {
				_ = syscall.Kill(ws[rng.IntN(len(ws))], syscall.SIGKILL)
				faults["kill -9 python worker"]++
			} else {
				faults["kill -9 python worker (none running)"]++
			}
		case 2:
			rd.Kill()
			rd.Restart()
			faults["restart redis (AOF)"]++
		case 3:
			_ = mi.Signal(syscall.SIGSTOP)
			time.Sleep(3 * time.Second) // MinIO stays paused for a while
			_ = mi.Signal(syscall.SIGCONT)
			faults["pause minio 3s"]++
		case 4:
			i := rng.IntN(nLinear)
			id := fmt.Sprintf("lin-%04d", i)
			version[id]++
			if err := pushLinear(ctx, st, stage, id, features[i], float64(1+version[id])); err != nil {
				t.Logf("push new version of %s: %v", id, err)
			}
			faults["push new version"]++
		}
	}
	close(stopProducer)
	<-producerDone
	// a member killed last is restarted by its goroutine: wait for it
	testenv.WaitFor(t, 90*time.Second, "every member up", func() bool {
		for _, m := range members {
			if m.pid() == 0 {
				return false
			}
		}
		return true
	})
	// every id sent must get a result
	total := int(sent.Load())
	// (reclaim of the last entries takes a few seconds; counted below)
	testenv.PollEvery(settling, time.Second, func() bool {
		resMu.Lock()
		defer resMu.Unlock()
		for i := 0; i < total; i++ {
			if seen["q-"+strconv.Itoa(i)] == 0 {
				return false
			}
		}
		return true
	})
	// let member 0 go quiet (its idle actors stop) before the leak sample
	// (if it does not within 30 s, the leak check below still samples)
	testenv.PollEvery(30*time.Second, 200*time.Millisecond, func() bool {
		st, err := status(members[0].http)
		if err != nil || len(st.Members) == 0 {
			return false
		}
		for _, info := range st.Members {
			if strings.HasSuffix(info.HTTP, members[0].http) && len(info.ActiveModels) > 0 {
				return false
			}
		}
		return true
	})
	close(stopSampler)
	<-samplerDone
	sampleOnce(false)
	// what an operator sees must not show a credential either: manta
	// status, the status and members endpoints, the metrics
	var shown strings.Builder
	out, err := exec.Command(bin, "status", "--addr", members[0].http).CombinedOutput()
	if err != nil {
		t.Errorf("manta status: %v %s", err, out)
	}
	shown.Write(out)
	for _, path := range []string{"/v1/status", "/v1/members", "/v1/loads", "/metrics"} {
		shown.WriteString(httpGet(members[0].http + path))
	}
	for i, sec := range []string{mi.SecretKey, redisPass} {
		if strings.Contains(shown.String(), sec) {
			t.Errorf("manta status or the HTTP endpoints show the %s", secretNames[i])
		}
	}
	close(stopConsumer)
	<-consumerDone

	resMu.Lock()
	missing, dups := 0, 0
	for i := 0; i < total; i++ {
		n := seen["q-"+strconv.Itoa(i)]
		if n == 0 {
			missing++
		} else {
			dups += n - 1
		}
	}
	resMu.Unlock()
	for _, n := range features {
		maxModel = max(maxModel, int64(n)*8+1024)
	}
	var m0Profile string
	if m0Start[0] > 0 && m0End[0] > 2*m0Start[0]+200 {
		m0Profile = goroutineProfile(members[0].http) // while it still runs
	}
	for _, m := range members {
		m.kill() // close the activation logs
	}
	violations, overlapMax := doubleActivations(t, members, time.Now().UnixNano())
	var b strings.Builder
	fmt.Fprintf(&b, "\nsoak summary (seed %d, %v)\n", seed, dur)
	fmt.Fprintf(&b, "  %-34s %d (+%d XADDs refused while Redis restarted)\n", "requests sent", total, sendErrs.Load())
	var kinds []string
	for k := range faults {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(&b, "  fault: %-27s %d\n", k, faults[k])
	}
	var cs []string
	for c := range codes {
		cs = append(cs, fmt.Sprintf("%s=%d", c, codes[c]))
	}
	sort.Strings(cs)
	fmt.Fprintf(&b, "  %-34s %s\n", "results by outcome", strings.Join(cs, " "))
	fmt.Fprintf(&b, "  %-34s %d\n", "duplicates", dups)
	fmt.Fprintf(&b, "  %-34s %d\n", "missing", missing)
	fmt.Fprintf(&b, "  %-34s %d overlaps, longest %v (fails over %v)\n", "double activations (activation log)", len(violations), time.Duration(overlapMax), handOverSlack)
	fmt.Fprintf(&b, "  %-34s %.2f (max used %d / budget %d)\n", "max memory / budget", float64(maxUsed)/budget, maxUsed, budget)
	fmt.Fprintf(&b, "  %-34s goroutines %d -> %d, fds %d -> %d\n", "member m0 (never killed)", m0Start[0], m0End[0], m0Start[1], m0End[1])
	leaks := 0
	for _, m := range members {
		m.leakMu.Lock()
		leaks += len(m.leaked)
		m.leakMu.Unlock()
	}
	fmt.Fprintf(&b, "  %-34s %d (member logs, manta status, /v1, /metrics)\n", "credentials shown", leaks)
	t.Log(b.String())
	if missing > 0 {
		t.Errorf("%d request ids have no result", missing)
	}
	// Make-before-break moves and the hand-off after a member dies overlap
	// two activations for a few milliseconds by design (the old one stops
	// once the directory has switched, or the duplicate is found and
	// stopped); an overlap longer than handOverSlack is a duplicate that
	// lived on.
	var lasting []string
	for _, v := range violations {
		if v.Overlap > handOverSlack {
			lasting = append(lasting, v.String())
		}
	}
	if len(lasting) > 0 {
		t.Errorf("double activations lasting over %v: %v", handOverSlack, lasting[:min(len(lasting), 10)])
	}
	if maxUsed > budget+maxModel {
		t.Errorf("memory %d exceeded the budget %d by more than one model (%d)", maxUsed, budget, maxModel)
	}
	for _, m := range members {
		m.leakMu.Lock()
		for name := range m.leaked {
			t.Errorf("member %s printed the %s", m.name, name)
		}
		m.leakMu.Unlock()
	}
	if m0Start[0] > 0 && m0End[0] > 2*m0Start[0]+200 {
		t.Errorf("goroutines of m0 grew from %d to %d; its goroutine profile:\n%s", m0Start[0], m0End[0], m0Profile)
	}
	if m0Start[1] > 0 && m0End[1] > 2*m0Start[1]+50 {
		t.Errorf("open fds of m0 grew from %d to %d", m0Start[1], m0End[1])
	}
}

func onesPayload(n int) string {
	return `{"features":[` + strings.TrimSuffix(strings.Repeat("1,", n), ",") + `]}`
}

// pushLinear pushes a version of a linear model with n weights all equal to w.
func pushLinear(ctx context.Context, st modelhost.Store, stage, id string, n int, w float64) error {
	dir, err := os.MkdirTemp(stage, id+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ws := make([]float64, n)
	for i := range ws {
		ws[i] = w
	}
	if err := os.WriteFile(filepath.Join(dir, "model.json"), modelgen.LinearJSON(ws, 0, "identity"), 0o644); err != nil {
		return err
	}
	man := fmt.Sprintf(`{"id":%q,"runtime":"linear","entrypoint":"model.json","memory_bytes":%d}`, id, n*8+1024)
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(man), 0o644); err != nil {
		return err
	}
	_, err = modelhost.Push(ctx, st, dir, modelhost.PushOptions{})
	return err
}

// pushPython pushes the sklearn model in dir under another id.
func pushPython(ctx context.Context, st modelhost.Store, dir, id string) error {
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	m["id"] = id
	delete(m, "version")
	delete(m, "files")
	stage, err := os.MkdirTemp("", "soak-py-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	entry := fmt.Sprint(m["entrypoint"])
	data, err := os.ReadFile(filepath.Join(dir, entry))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(stage, entry), data, 0o644); err != nil {
		return err
	}
	mb, _ := json.Marshal(m)
	if err := os.WriteFile(filepath.Join(stage, "manifest.json"), mb, 0o644); err != nil {
		return err
	}
	_, err = modelhost.Push(ctx, st, stage, modelhost.PushOptions{})
	return err
}

// doubleActivations reads the members' activation logs and returns the
// identities active on two members at overlapping times, and the longest
// overlap (clusterbench.CheckActivationLogs: a kill ends a member's open
// activations at the kill time).
func doubleActivations(t *testing.T, members []*member, end int64) ([]clusterbench.Overlap, int64) {
	logs, kills := map[string]string{}, map[string][]int64{}
	for _, m := range members {
		if _, err := os.Stat(m.log); err != nil {
			t.Errorf("activation log of %s: %v", m.name, err)
			continue
		}
		logs[m.name] = m.log
		kills[m.name] = m.kills
	}
	out, err := clusterbench.CheckActivationLogs(logs, kills, end)
	if err != nil {
		t.Error(err)
	}
	var longest int64
	for _, o := range out {
		longest = max(longest, int64(o.Overlap))
	}
	return out, longest
}

// httpGet returns the body at url ("" on an error).
func httpGet(url string) string {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// goroutineProfile fetches a member's goroutine profile (grouped stacks),
// cut to the 40 biggest groups.
func goroutineProfile(addr string) string {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	groups := strings.Split(string(b), "\n\n")
	if len(groups) > 40 {
		groups = groups[:40]
	}
	return strings.Join(groups, "\n\n")
}
