package clusterbench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/internal/modelgen"
)

type bench struct {
	cfg   Config
	rep   *Report
	dir   string
	store string
	ids   []string // model ids, index j is model j
	etcd  string
	rdb   *redis.Client

	mu      sync.Mutex
	infra   []*proc // etcd, redis: stopped last
	members []*proc
	actLogs []string
}

func (b *bench) run(ctx context.Context) error {
	setup := time.Now()
	if err := os.MkdirAll(filepath.Join(b.dir, "logs"), 0o755); err != nil {
		return err
	}
	etcd, err := b.startEtcd(ctx)
	if err != nil {
		return err
	}
	b.etcd = etcd
	redisAddr, err := b.startRedis(ctx)
	if err != nil {
		return err
	}
	b.rdb = redis.NewClient(&redis.Options{Addr: redisAddr, PoolSize: 32})
	defer b.rdb.Close()
	b.logf("etcd on %s, redis-server on %s, working directory %s", etcd, redisAddr, b.dir)

	t := time.Now()
	if err := b.generate(); err != nil {
		return err
	}
	b.logf("%d linear models generated in %s in %v", b.cfg.Models, b.store, time.Since(t).Round(time.Millisecond))

	// Members start concurrently.
	t = time.Now()
	b.members = make([]*proc, b.cfg.Members)
	b.actLogs = make([]string, b.cfg.Members)
	errs := make([]error, b.cfg.Members)
	var wg sync.WaitGroup
	for i := range b.cfg.Members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = b.startMember(ctx, i+1, etcd, redisAddr)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	if err := b.waitMembers(ctx, b.cfg.Members, 60*time.Second, 20*time.Second); err != nil {
		return err
	}
	b.rep.Setup = time.Since(setup)
	b.logf("%d members up in %v (HTTP %s)", b.cfg.Members, time.Since(t).Round(time.Millisecond), strings.Join(b.httpAddrs(), " "))

	// RSS before any model is active.
	b.rep.RSSStart = b.rssAll()

	// 1. cold pass
	if b.cfg.Profile {
		b.profiles(ctx, "profile", "cold", coldProfile)
	}
	b.rep.Cold, err = b.pass(ctx, "cold")
	if err != nil {
		return err
	}
	b.rep.RSSCold = b.rssAll()
	if b.cfg.Profile {
		b.profiles(ctx, "heap", "heap", 0)
	}
	views := b.views(ctx)
	b.rep.ActivationsPerMember = make([]int, len(b.members))
	for i, v := range views {
		if v.ok {
			b.rep.Activations += v.self.Activations
			b.rep.ActivationsPerMember[i] = len(v.self.ActiveModels)
		}
	}
	var growth int64
	for i := range b.rep.RSSStart {
		growth += b.rep.RSSCold[i] - b.rep.RSSStart[i]
	}
	if b.rep.Activations > 0 {
		b.rep.RSSPerActivationKiB = float64(growth) / 1024 / float64(b.rep.Activations)
	}
	b.note(views, true)

	// 2. warm pass
	b.rep.Warm, err = b.pass(ctx, "warm")
	if err != nil {
		return err
	}
	b.note(b.views(ctx), true)

	// 3. cross-member latency: the SDK, then raw protoactor.
	b.rep.SDK = b.sdkLatency(ctx)
	b.logf("SDK Predict+Get p50 %v (%d samples, %d errors)", b.rep.SDK.P50, b.rep.SDK.Samples, b.rep.SDK.Errors)
	b.rep.Raw = rawLatency(ctx, b.etcd, b.cfg.LatencySamples)
	b.logf("raw protoactor cluster.Request p50 %v (%d samples, %d errors)", b.rep.Raw.P50, b.rep.Raw.Samples, b.rep.Raw.Errors)
	if b.rep.SDK.P50 > 0 && b.rep.Raw.P50 > 0 {
		b.rep.Ratio = float64(b.rep.SDK.P50) / float64(b.rep.Raw.P50)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}

	// 4. idle CPU
	if err := b.idleCPU(ctx); err != nil {
		return err
	}
	b.rep.RSSIdle = b.rssAll()
	if b.rep.Activations > 0 && len(b.rep.RSSIdle) == len(b.rep.RSSStart) {
		var growth int64
		for i := range b.rep.RSSStart {
			growth += b.rep.RSSIdle[i] - b.rep.RSSStart[i]
		}
		b.rep.RSSPerActivationIdleKiB = float64(growth) / 1024 / float64(b.rep.Activations)
	}

	// 6. failover
	if b.cfg.Failover {
		if err := b.failover(ctx); err != nil {
			return err
		}
	}

	return nil
}

// generate writes the models into Dir/models, a few writers at once.
func (b *bench) generate() error {
	b.store = filepath.Join(b.dir, "models")
	width := max(5, len(fmt.Sprint(b.cfg.Models)))
	b.ids = make([]string, b.cfg.Models)
	for j := range b.ids {
		b.ids[j] = fmt.Sprintf("m-%0*d", width, j+1)
	}
	var (
		wg    sync.WaitGroup
		next  = make(chan int)
		errMu sync.Mutex
		first error
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				k1, k2, bias := modelWeights(j)
				if err := modelgen.Linear(b.store, b.ids[j], "1", []float64{k1, k2}, bias, "identity"); err != nil {
					errMu.Lock()
					if first == nil {
						first = fmt.Errorf("clusterbench: generate model %s: %w", b.ids[j], err)
					}
					errMu.Unlock()
				}
			}
		}()
	}
	for j := range b.ids {
		next <- j
	}
	close(next)
	wg.Wait()
	return first
}

func (b *bench) httpAddrs() []string {
	var out []string
	for _, m := range b.members {
		out = append(out, m.http)
	}
	return out
}

// alive returns the members not killed.
func (b *bench) alive() []*proc {
	var out []*proc
	for _, m := range b.members {
		if m.killedAt == 0 && !m.exited() {
			out = append(out, m)
		}
	}
	return out
}

var httpClient = &http.Client{Timeout: 20 * time.Second}

// statusOf is GET /v1/status of member m (the cluster as it sees it).
func (b *bench) statusOf(ctx context.Context, m *proc) (*manta.Status, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+m.http+"/v1/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/v1/status: %s %s %v", m.http, resp.Status, body, err)
	}
	var st manta.Status
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("GET %s/v1/status: %w", m.http, err)
	}
	return &st, nil
}

// status is the status of the first live member that answers.
func (b *bench) status(ctx context.Context) (*manta.Status, error) {
	var lastErr error
	for _, m := range b.alive() {
		st, err := b.statusOf(ctx, m)
		if err == nil {
			return st, nil
		}
		lastErr = err
	}
	return nil, fmt.Errorf("clusterbench: status: %v", lastErr)
}

// waitMembers waits until one member's status lists n members, all
// answering (an error after d), then up to settle for every member's own
// status to list all n: a member that still does not is said and measured
// anyway (the report's MembersSeen shows it).
func (b *bench) waitMembers(ctx context.Context, n int, d, settle time.Duration) error {
	deadline := time.Now().Add(d)
	var last string
	for {
		st, err := b.status(ctx)
		if err == nil {
			ok := 0
			for _, m := range st.Members {
				if m.Error == "" && m.HTTP != "" {
					ok++
				}
			}
			if ok == n && len(st.Members) == n {
				break
			}
			last = fmt.Sprintf("%d members, %d answering", len(st.Members), ok)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("clusterbench: the cluster did not show %d members within %v (%s)", n, d, last)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	deadline = time.Now().Add(settle)
	for {
		var partial []string
		views := b.views(ctx)
		for i, v := range views {
			if !v.ok || v.seen != n {
				partial = append(partial, fmt.Sprintf("%s sees %d", b.members[i].name, v.seen))
			}
		}
		if len(partial) == 0 {
			b.note(views, true)
			return nil
		}
		if time.Now().After(deadline) {
			b.note(views, true)
			b.logf("after %v not every member sees the %d members (%s): measuring anyway", settle, n, strings.Join(partial, ", "))
			return nil
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// view is a member's own entry in its /v1/status, and how many members
// that status lists (the cluster as that member sees it).
type view struct {
	self manta.MemberInfo
	seen int
	ok   bool
}

// views asks every live member for its status (index as b.members; a
// killed or silent member's view is not ok).
func (b *bench) views(ctx context.Context) []view {
	out := make([]view, len(b.members))
	var wg sync.WaitGroup
	for i, m := range b.members {
		if m.killedAt != 0 || m.exited() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := b.statusOf(ctx, m)
			if err != nil {
				return
			}
			for _, mi := range st.Members {
				if mi.HTTP == m.http {
					out[i] = view{self: mi, seen: len(st.Members), ok: true}
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// note records, from the members' views, the models active on more than
// one member and (with membership) the fewest members each member listed.
func (b *bench) note(views []view, membership bool) {
	on := map[string]int{}
	if b.rep.MembersSeen == nil {
		b.rep.MembersSeen = make([]int, len(b.members))
		for i := range b.rep.MembersSeen {
			b.rep.MembersSeen[i] = -1
		}
	}
	for i, v := range views {
		if !v.ok {
			continue
		}
		if membership && (b.rep.MembersSeen[i] < 0 || v.seen < b.rep.MembersSeen[i]) {
			b.rep.MembersSeen[i] = v.seen
		}
		for _, id := range v.self.ActiveModels {
			on[id]++
		}
	}
	n := 0
	for _, c := range on {
		if c > 1 {
			n++
		}
	}
	b.rep.OnTwoMembers = max(b.rep.OnTwoMembers, n)
}

func (b *bench) rssAll() []int64 {
	out := make([]int64, len(b.members))
	for i, m := range b.members {
		if m.cmd.Process != nil {
			out[i], _ = rss(m.cmd.Process.Pid)
		}
	}
	return out
}

// coldProfile is how long the members' CPU is profiled from the start of
// the cold pass (Config.Profile).
const coldProfile = 15 * time.Second

// profiles saves each member's /debug/pprof/<kind> (over window when it is
// a CPU profile) as Dir/logs/<member>.<name>.pprof, all members at once.
// A member that does not answer is logged, not an error: the profile is a
// diagnostic, not a measurement.
func (b *bench) profiles(ctx context.Context, kind, name string, window time.Duration) {
	var wg sync.WaitGroup
	for _, m := range b.members {
		if m == nil || m.http == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := "http://" + m.http + "/debug/pprof/" + kind
			if window > 0 {
				// pprof refuses a profile longer than the member's HTTP
				// write timeout: the first 20 s at most.
				url += fmt.Sprintf("?seconds=%d", int(min(window, 20*time.Second).Seconds()))
			}
			path := filepath.Join(b.dir, "logs", m.name+"."+name+".pprof")
			if err := download(ctx, url, path, window+30*time.Second); err != nil {
				b.logf("profile of %s: %v", m.name, err)
			}
		}()
	}
	if window == 0 {
		wg.Wait()
		return
	}
	// CPU profiles run over the idle window: the caller waits on that
	// window; the downloads end with it.
	go wg.Wait()
}

// download GETs url into path within timeout.
func download(ctx context.Context, url, path string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// idleCPU samples each member's CPU time over IdleWindow with no traffic.
func (b *bench) idleCPU(ctx context.Context) error {
	if b.cfg.IdleSettle > 0 {
		b.logf("idle CPU: %v without traffic before sampling", b.cfg.IdleSettle)
		if err := sleep(ctx, b.cfg.IdleSettle); err != nil {
			return err
		}
		b.rep.IdleSettle = b.cfg.IdleSettle
	}
	b.logf("idle CPU: sampling %d members for %v", len(b.members), b.cfg.IdleWindow)
	start := make([]int64, len(b.members))
	for i, m := range b.members {
		t, err := cpuTicks(m.cmd.Process.Pid)
		if err != nil {
			return fmt.Errorf("clusterbench: idle CPU of %s: %w", m.name, err)
		}
		start[i] = t
	}
	t0 := time.Now()
	if b.cfg.Profile {
		b.profiles(ctx, "profile", "idle", b.cfg.IdleWindow)
	}
	if err := sleep(ctx, b.cfg.IdleWindow-time.Since(t0)); err != nil {
		return err
	}
	el := time.Since(t0).Seconds()
	b.rep.IdleCPU = make([]float64, len(b.members))
	var sum float64
	for i, m := range b.members {
		t, err := cpuTicks(m.cmd.Process.Pid)
		if err != nil {
			return fmt.Errorf("clusterbench: idle CPU of %s: %w", m.name, err)
		}
		pct := 100 * float64(t-start[i]) / clockTick / el
		b.rep.IdleCPU[i] = pct
		sum += pct
		b.rep.IdleCPUMax = max(b.rep.IdleCPUMax, pct)
	}
	b.rep.IdleCPUMean = sum / float64(len(b.members))
	return nil
}

// failover kills -9 a member hosting models and follows up to
// FailoverModels of them until each answers correctly again.
func (b *bench) failover(ctx context.Context) error {
	views := b.views(ctx)
	// The victim: not the leader (the lowest member id), the member with
	// the most active models among the others.
	leader := ""
	for _, v := range views {
		if v.ok && (leader == "" || v.self.ID < leader) {
			leader = v.self.ID
		}
	}
	var victim *proc
	var models []string
	for i, v := range views {
		if !v.ok || v.self.ID == leader {
			continue
		}
		var ids []string
		for _, id := range v.self.ActiveModels {
			if !strings.Contains(id, "@") {
				ids = append(ids, id)
			}
		}
		if victim == nil || len(ids) > len(models) {
			victim, models = b.members[i], ids
		}
	}
	if victim == nil || len(models) == 0 {
		return fmt.Errorf("clusterbench: failover: no member but the leader hosts a model")
	}
	sort.Strings(models)
	fo := &Failover{Victim: victim.name, VictimModels: len(models), FailedAttempts: map[string]int{}}
	b.rep.Failover = fo
	// An even sample of its models.
	if len(models) > b.cfg.FailoverModels {
		step := float64(len(models)) / float64(b.cfg.FailoverModels)
		var s []string
		for k := 0; k < b.cfg.FailoverModels; k++ {
			s = append(s, models[int(float64(k)*step)])
		}
		models = s
	}
	fo.Models = len(models)
	b.logf("failover: kill -9 %s (%d active models), following %d of them", victim.name, fo.VictimModels, fo.Models)

	sc := newStreamClient(ctx, b.rdb, "clusterbench:failover")
	defer sc.close()
	var (
		mu    sync.Mutex
		times []time.Duration
		wg    sync.WaitGroup
	)
	killed := time.Now()
	victim.killedAt = killed.UnixNano()
	victim.kill()
	for _, id := range models {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := idIndex(id)
			type answer struct {
				r   result
				seq int
			}
			ch := make(chan answer, 64)
			var ids []string
			defer func() {
				for _, rid := range ids {
					sc.unregister(rid)
				}
			}()
			deadline := killed.Add(b.cfg.FailoverTimeout)
			fail := func(what, sample string) {
				mu.Lock()
				fo.FailedAttempts[what]++
				if len(fo.Samples) < 5 && sample != "" {
					fo.Samples = append(fo.Samples, sample)
				}
				mu.Unlock()
			}
			for attempt := 0; time.Now().Before(deadline) && ctx.Err() == nil; attempt++ {
				rid := fmt.Sprintf("fo-%s-%d", id, attempt)
				seq := attempt
				sc.register(rid, func(r result) {
					select {
					case ch <- answer{r, seq}:
					default:
					}
				})
				ids = append(ids, rid)
				mu.Lock()
				fo.Attempts++
				mu.Unlock()
				if err := sc.send(ctx, []request{{id: rid, model: id, payload: payload(seq)}}); err != nil {
					fail("xadd", err.Error())
					_ = sleep(ctx, 200*time.Millisecond)
					continue
				}
				wait := time.NewTimer(min(5*time.Second, time.Until(deadline)))
				retry := false
				for !retry {
					select {
					case a := <-ch:
						r := a.r
						if r.err != "" {
							fail(code(r.err), fmt.Sprintf("%s after %v: %s", id, r.at.Sub(killed).Round(time.Millisecond), r.err))
							retry = true
							continue
						}
						if w := check(r.model, r.version, r.output, expected(j, a.seq), id); w != "" {
							mu.Lock()
							fo.Wrong++
							mu.Unlock()
							fail("wrong", id+": "+w)
							retry = true
							continue
						}
						wait.Stop()
						mu.Lock()
						times = append(times, r.at.Sub(killed))
						mu.Unlock()
						return
					case <-wait.C:
						fail("no_answer", "")
						retry = true
					case <-ctx.Done():
						wait.Stop()
						return
					}
				}
				wait.Stop()
				_ = sleep(ctx, 100*time.Millisecond)
			}
			mu.Lock()
			if len(fo.Never) < 10 {
				fo.Never = append(fo.Never, id)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	fo.Answered = len(times)
	fo.NeverAnswered = fo.Models - fo.Answered
	fo.P50, fo.P99 = percentile(times, 0.5), percentile(times, 0.99)
	for _, d := range times {
		fo.Max = max(fo.Max, d)
	}
	if len(fo.FailedAttempts) == 0 {
		fo.FailedAttempts = nil
	}
	b.logf("failover: %d of %d answered again, p50 %v, max %v; %d never", fo.Answered, fo.Models, fo.P50, fo.Max, fo.NeverAnswered)
	b.note(b.views(ctx), false)
	return nil
}
