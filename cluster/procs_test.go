package cluster_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/cluster"
	"github.com/manta-ml/manta/internal/modelgen"
	"github.com/manta-ml/manta/internal/testenv"
	"github.com/manta-ml/manta/modelhost"
)

// The multi-process tests: `manta serve --cluster etcd` processes on
// loopback sharing one directory store, and this process as a client.

var (
	buildOnce sync.Once
	mantaBin  string
	buildErr  error
)

func buildManta(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "manta-cluster-bin-")
		if err != nil {
			buildErr = err
			return
		}
		mantaBin = filepath.Join(dir, "manta")
		cmd := exec.Command("go", "build", "-o", mantaBin, "./cmd/manta")
		cmd.Dir = testenv.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return mantaBin
}

type proc struct {
	cmd  *exec.Cmd
	http string
	name string // served_by
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// serve starts `manta serve` and waits until it prints its HTTP address.
func serve(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(buildManta(t), append([]string{"serve", "--http", "127.0.0.1:0"}, args...)...)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	p := &proc{cmd: cmd, done: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		var once sync.Once
		for sc.Scan() {
			l := sc.Text()
			p.mu.Lock()
			if p.out.Len() < 1<<20 {
				p.out.WriteString(l + "\n")
			}
			if strings.HasPrefix(l, "manta: member ") {
				p.name = strings.Fields(l)[2]
			}
			if i := strings.Index(l, "http://"); i >= 0 {
				p.http = strings.Fields(l[i+len("http://"):])[0]
				once.Do(func() { close(ready) })
			}
			p.mu.Unlock()
		}
	}()
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	select {
	case <-ready:
	case <-p.done:
		t.Fatalf("manta serve exited:\n%s", p.output())
	case <-time.After(60 * time.Second):
		t.Fatalf("manta serve did not start:\n%s", p.output())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, d, what, cond)
}

// procCluster is the store, etcd, members and clients of one test.
type procCluster struct {
	t       *testing.T
	root    string
	etcd    *testenv.Etcd
	sizes   map[string]int64
	ids     []string
	args    []string
	members []*proc
	client  *manta.Client
	cm      *cluster.Member // a bare cluster client: Where, Loads
}

const mib = 1 << 20

func newProcCluster(t *testing.T, models int, budget string) *procCluster {
	pc := &procCluster{t: t, root: t.TempDir(), sizes: map[string]int64{}}
	pc.etcd = testenv.StartEtcd(t)
	rng := rand.New(rand.NewPCG(5, 5))
	for i := 0; i < models; i++ {
		id := fmt.Sprintf("m%03d", i)
		// Lognormal estimates, median 2 MiB, 128 KiB .. 32 MiB.
		size := int64(math.Exp(math.Log(2*mib) + 1.2*rng.NormFloat64()))
		size = min(max(size, 128<<10), 32*mib)
		pc.sizes[id] = size
		pc.ids = append(pc.ids, id)
		err := modelgen.Write(pc.root, modelhost.Manifest{ID: id, Version: "1", Runtime: "linear", Format: "linear-json",
			Entrypoint: "model.json", MemoryBytes: size}, map[string][]byte{"model.json": modelgen.LinearJSON([]float64{float64(i)}, 0, "")})
		if err != nil {
			t.Fatal(err)
		}
	}
	pc.args = []string{"--cluster", "etcd", "--etcd", pc.etcd.Endpoint, "--store", pc.root, "--budget", budget, "--idle", "10m"}
	return pc
}

func (pc *procCluster) start(n int) {
	var wg sync.WaitGroup
	out := make([]*proc, n)
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = serve(pc.t, pc.args...)
		}()
	}
	wg.Wait()
	pc.members = append(pc.members, out...)
}

func (pc *procCluster) connect() {
	t := pc.t
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := manta.DefaultConfig()
	cfg.Cluster.Provider = cluster.ProviderEtcd
	cfg.Cluster.Etcd = []string{pc.etcd.Endpoint}
	c, err := manta.Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	pc.client = c
	ccfg := cluster.DefaultConfig()
	ccfg.Provider = cluster.ProviderEtcd
	ccfg.Etcd = []string{pc.etcd.Endpoint}
	cm, err := cluster.StartClient(ctx, ccfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cm.Shutdown(context.Background(), false) })
	pc.cm = cm
}

// active returns, per member served_by name, its active models (from
// every member's own status).
func (pc *procCluster) active() map[string][]string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	st, err := pc.client.Status(ctx)
	if err != nil {
		pc.t.Fatal(err)
	}
	out := map[string][]string{}
	for _, m := range st.Members {
		if m.Error != "" {
			continue
		}
		out[m.Address] = m.ActiveModels
	}
	return out
}

// hosts maps each identity to the members it is active on.
func hosts(active map[string][]string) map[string][]string {
	out := map[string][]string{}
	for m, ids := range active {
		for _, id := range ids {
			out[id] = append(out[id], m)
		}
	}
	return out
}

func predictHTTP(addr, id string, x float64) (servedBy string, err error) {
	body := fmt.Sprintf(`{"features":[%g]}`, x)
	resp, err := http.Post("http://"+addr+"/v1/models/"+id+"/predict", "application/json", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s via %s: %s: %s", id, addr, resp.Status, b)
	}
	var r struct {
		ServedBy string `json:"served_by"`
	}
	_ = json.Unmarshal(b, &r)
	return r.ServedBy, nil
}

func TestProcsPlacementFailoverJoin(t *testing.T) {
	testenv.SkipShort(t, "multi-process test")
	pc := newProcCluster(t, 300, "384MiB")
	var total int64
	for _, s := range pc.sizes {
		total += s
	}
	t.Logf("300 models, %d MiB of estimates, 3 members of 384 MiB", total/mib)
	pc.start(3)
	pc.connect()
	waitUntil(t, 30*time.Second, "3 members in the status", func() bool { return len(pc.active()) == 3 })

	// 1. Concurrent first requests for every model through every member.
	var (
		wg   sync.WaitGroup
		errs atomic.Int64
		sem  = make(chan struct{}, 24)
		mu   sync.Mutex
		seen = map[string]map[string]bool{}
	)
	for _, id := range pc.ids {
		for _, m := range pc.members {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				by, err := predictHTTP(m.http, id, 1)
				if err != nil {
					if errs.Add(1) < 5 {
						t.Errorf("first request: %v", err)
					}
					return
				}
				mu.Lock()
				if seen[id] == nil {
					seen[id] = map[string]bool{}
				}
				seen[id][by] = true
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	if errs.Load() > 0 {
		t.Fatalf("%d first requests failed", errs.Load())
	}
	before := hosts(pc.active())
	perMember := map[string]int64{}
	for _, id := range pc.ids {
		if len(before[id]) != 1 || len(seen[id]) != 1 {
			t.Errorf("%s: active on %v, answered by %v: want exactly one activation", id, before[id], seen[id])
			continue
		}
		perMember[before[id][0]] += pc.sizes[id]
	}
	for m, b := range perMember {
		t.Logf("member %s: %d models' estimates %d MiB of 384", m, len(pc.active()[m]), b/mib)
		if b > 384*mib {
			t.Errorf("member %s holds %d MiB of estimates, over its 384 MiB budget", m, b/mib)
		}
	}
	// Where (the SDK's, through a directory) agrees with the members, and
	// names their HTTP addresses once the gossip has them.
	waitUntil(t, 10*time.Second, "every member's HTTP address in the gossip", func() bool {
		loads, err := pc.client.Loads(context.Background())
		if err != nil || len(loads) != 3 {
			return false
		}
		for _, ld := range loads {
			if ld.HTTP == "" {
				return false
			}
		}
		return true
	})
	for _, id := range pc.ids[:20] {
		w, err := pc.client.Where(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if len(w.Activations) != 1 || w.Activations[0].Address != before[id][0] || w.Activations[0].HTTP == "" {
			t.Errorf("where %s = %+v, status says %v", id, w, before[id])
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// 2. A member joins: nothing is unloaded or moved.
	pc.start(1)
	waitUntil(t, 30*time.Second, "4 members in the status", func() bool { return len(pc.active()) == 4 })
	// Give the hand-off (re-announcements) its time, then check every
	// model is still where it was and lookups through the newcomer find it.
	joined := pc.members[3]
	for _, id := range pc.ids[:60] {
		by, err := predictHTTP(joined.http, id, 2)
		if err != nil {
			t.Fatal(err)
		}
		_ = by
	}
	after := hosts(pc.active())
	for _, id := range pc.ids {
		if fmt.Sprint(after[id]) != fmt.Sprint(before[id]) {
			t.Errorf("%s: active on %v after the join, was %v", id, after[id], before[id])
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// 3. kill -9 a member under load: its models serve again from the
	// survivors, each within failure detection + load time, and once.
	victim := pc.members[1]
	var victimAddr string
	for addr, ids := range pc.active() {
		for _, id := range ids {
			if seen[id][victim.name] {
				victimAddr = addr
			}
		}
	}
	var lost []string
	for id, on := range before {
		if len(on) == 1 && on[0] == victimAddr {
			lost = append(lost, id)
		}
	}
	sort.Strings(lost)
	if len(lost) == 0 {
		t.Fatalf("the victim %s (%s) hosts nothing", victim.name, victimAddr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var (
		maxLat   atomic.Int64
		loadErrs atomic.Int64
		served   atomic.Int64
		firstOK  sync.Map // id -> time of its first success after the kill
		killedAt atomic.Int64
		lwg      sync.WaitGroup
	)
	for w := 0; w < 8; w++ {
		lwg.Add(1)
		go func() {
			defer lwg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 9))
			for ctx.Err() == nil {
				id := lost[rng.IntN(len(lost))]
				if rng.IntN(2) == 0 {
					id = pc.ids[rng.IntN(len(pc.ids))]
				}
				start := time.Now()
				rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := pc.client.Model(id).Predict(rctx, []byte(`{"features":[3]}`)).Get(rctx)
				rcancel()
				lat := time.Since(start)
				for {
					cur := maxLat.Load()
					if int64(lat) <= cur || maxLat.CompareAndSwap(cur, int64(lat)) {
						break
					}
				}
				if err != nil {
					if loadErrs.Add(1) <= 5 {
						t.Logf("request %s during the failover: %v", id, err)
					}
					continue
				}
				served.Add(1)
				if k := killedAt.Load(); k != 0 {
					firstOK.LoadOrStore(id, time.Now())
				}
			}
		}()
	}
	waitUntil(t, 10*time.Second, "load running", func() bool { return served.Load() > 200 })
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	killedAt.Store(killed.UnixNano())
	waitUntil(t, 40*time.Second, "every model of the killed member served again", func() bool {
		for _, id := range lost {
			if _, ok := firstOK.Load(id); !ok {
				return false
			}
		}
		return true
	})
	var worst time.Duration
	for _, id := range lost {
		v, _ := firstOK.Load(id)
		if d := v.(time.Time).Sub(killed); d > worst {
			worst = d
		}
	}
	cancel()
	lwg.Wait()
	t.Logf("kill -9: %d models lost, all served again within %v; max request latency %v; %d errors of %d requests",
		len(lost), worst.Round(time.Millisecond), time.Duration(maxLat.Load()).Round(time.Millisecond), loadErrs.Load(), served.Load())
	// Failure detection (etcd TTL 3s + watch) + hand-off + a load.
	if worst > 12*time.Second {
		t.Errorf("models of the killed member took %v to serve again", worst)
	}
	if lat := time.Duration(maxLat.Load()); lat > 15*time.Second {
		t.Errorf("a request waited %v", lat)
	}
	if loadErrs.Load() > 0 {
		t.Errorf("%d requests failed during the failover", loadErrs.Load())
	}
	final := hosts(pc.active())
	for _, id := range pc.ids {
		if len(final[id]) > 1 {
			t.Errorf("%s is active on %v after the hand-off: a duplicate", id, final[id])
		}
	}
	for _, id := range lost {
		if len(final[id]) != 1 {
			t.Errorf("%s (lost) is active on %v", id, final[id])
		}
	}
}

// Skewed traffic onto a few models of one member: the leader adds replicas
// (and the rebalancer may move models), and the traffic spreads.
func TestProcsSkewReplicatesAndRebalances(t *testing.T) {
	testenv.SkipShort(t, "multi-process test")
	pc := newProcCluster(t, 60, "512MiB")
	pc.start(3)
	pc.connect()
	waitUntil(t, 30*time.Second, "3 members in the status", func() bool { return len(pc.active()) == 3 })
	ctx := context.Background()
	for _, id := range pc.ids {
		if _, err := pc.client.Model(id).Predict(ctx, []byte(`{"features":[1]}`)).Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The three hot models: all on the member hosting the most.
	act := pc.active()
	busiest := ""
	for m, ids := range act {
		if busiest == "" || len(ids) > len(act[busiest]) {
			busiest = m
		}
	}
	hot := append([]string(nil), act[busiest]...)
	sort.Strings(hot)
	hot = hot[:3]
	t.Logf("hot models %v, all on %s", hot, busiest)

	type window struct {
		mu sync.Mutex
		by map[string]int
	}
	var cur atomic.Pointer[window]
	cur.Store(&window{by: map[string]int{}})
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var errs atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 24; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; lctx.Err() == nil; i++ {
				id := hot[(w+i)%len(hot)]
				rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
				res, err := pc.client.Model(id).Predict(rctx, []byte(`{"features":[1]}`)).Get(rctx)
				rcancel()
				if err != nil {
					errs.Add(1)
					continue
				}
				win := cur.Load()
				win.mu.Lock()
				win.by[res.ServedBy]++
				win.mu.Unlock()
			}
		}()
	}
	share := func(win *window) (float64, int, map[string]int) {
		win.mu.Lock()
		defer win.mu.Unlock()
		top, n := 0, 0
		for _, c := range win.by {
			n += c
			top = max(top, c)
		}
		if n == 0 {
			return 1, 0, win.by
		}
		return float64(top) / float64(n), n, win.by
	}
	time.Sleep(3 * time.Second) // a measurement window, not a wait for a condition
	first, n0, by0 := share(cur.Swap(&window{by: map[string]int{}}))
	t.Logf("before: busiest member serves %.0f%% of %d hot requests in 3s %v", 100*first, n0, by0)

	replicas := func() int {
		n := 0
		for _, id := range hot {
			w, err := pc.cm.Where(ctx, id)
			if err == nil {
				n += w.Replicas
			}
		}
		return n
	}
	start := time.Now()
	waitUntil(t, 60*time.Second, "replicas of the hot models", func() bool { return replicas() >= len(hot) })
	t.Logf("replicas of the hot models after %v: %d", time.Since(start).Round(time.Second), replicas())
	cur.Store(&window{by: map[string]int{}}) // measure from the spread
	time.Sleep(4 * time.Second)              // a measurement window
	last, n1, by1 := share(cur.Load())
	cancel()
	wg.Wait()
	t.Logf("after: busiest member serves %.0f%% of %d hot requests in 4s %v", 100*last, n1, by1)
	for _, id := range hot {
		w, err := pc.cm.Where(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var on []string
		for _, a := range w.Activations {
			on = append(on, a.Identity+"@"+a.Address)
		}
		t.Logf("where %s: %v", id, on)
	}
	loads, err := pc.cm.Loads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var added int64
	for _, ld := range loads {
		t.Logf("member %s: %.0f req/s, %d activations, %d MiB active of %d; placement %+v", ld.Address, ld.Rate, ld.Activations, ld.Active/mib, ld.Budget/mib, ld.Placement)
		added += ld.Placement.ReplicasAdded
	}
	if added < int64(len(hot)) {
		t.Errorf("the leader counted %d replicas added", added)
	}
	if errs.Load() > 0 {
		t.Errorf("%d hot requests failed", errs.Load())
	}
	if len(by1) < 2 || last > 0.75 {
		t.Errorf("hot traffic did not spread: busiest member %.0f%% (%v)", 100*last, by1)
	}
}
