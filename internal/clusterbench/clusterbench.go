// Package clusterbench runs Manta as it runs in production, on loopback:
// etcd, Redis and K `manta serve --cluster etcd --redis …` processes over one
// directory store of N tiny linear models, and measures it (`manta bench
// cluster`, and the multi-process correctness test of this package):
//
//  1. a cold pass: every model requested RequestsPerModel times, round-robin
//     over the models, through the Redis stream manta:requests, every answer
//     checked exactly (each model has its own weights and bias);
//  2. a warm pass: the same with every model active;
//  3. cross-member latency: p50 of the Go SDK's Predict+Get (a Connect
//     client) against the p50 of a raw protoactor-go cluster request to an
//     echo actor on another member (same etcd provider, same process pair);
//  4. idle CPU of each member with no traffic (/proc/PID/stat);
//  5. RSS per activation (/proc/PID/status VmRSS before and after the cold
//     pass, over the members' activation counters);
//  6. failover: kill -9 one member and time, per model that was active on
//     it (up to FailoverModels), from the kill to its first correct answer;
//  7. exactness: whether every answer was exact, and how many requests
//     failed; the members' activation logs (MANTA_ACTIVATION_LOG) tell
//     whether a model was ever active on two members at once.
//
// It has no testing dependency: the CLI and the test share it. Every wait is
// bounded, a failure to start something is an error naming it, and every
// process it starts is stopped when Run returns (also on an error or a
// cancelled context; the children also die with SIGKILL if this process
// dies: Pdeathsig).
package clusterbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/manta-ml/manta/internal/latency"
)

// Config configures a run. Start from DefaultConfig: zero numbers take their
// defaults, but Failover's default (true) is only in DefaultConfig.
type Config struct {
	Members          int    // member processes (default 3)
	Models           int    // linear models generated (default 10000)
	RequestsPerModel int    // requests per model and pass (default 10)
	Dir              string // working directory; "" makes a temporary one
	KeepDir          bool   // keep Dir afterwards (a temporary Dir is removed unless set)
	MantaBin         string // the manta executable (required)
	Failover         bool   // run the kill -9 measurement

	// Concurrency bounds the stream requests outstanding at once (default
	// 1024 per member: each member reads at most 1024 entries at a time).
	Concurrency int
	// RequestTimeout is how long a stream request may wait for its answer,
	// from its XADD (default 60s); later it counts as missing.
	RequestTimeout time.Duration
	// LatencySamples is the number of sequential requests of each latency
	// measurement (default 2000).
	LatencySamples int
	// IdleWindow is the idle CPU sampling window (default 10s).
	IdleWindow time.Duration
	// IdleSettle is how long the cluster is left without traffic before
	// the idle window opens (default 30s; negative: none). The members'
	// request rates are EWMAs (5 s time constant), and until the
	// cluster's rate falls below a tenth of the hot rate the leader's
	// rebalancer still pulls and plans over every activation: that is
	// the tail of the last pass, not the cost of being idle.
	IdleSettle time.Duration
	// FailoverModels is how many models of the killed member are followed
	// (default 200); FailoverTimeout how long each may take to answer
	// again before it counts as never answered (default 60s).
	FailoverModels  int
	FailoverTimeout time.Duration
	// Profile makes the members serve pprof and saves, into Dir/logs, each
	// member's CPU profile over the first 15 s of the cold pass
	// (member-N.cold.pprof), its heap profile after the cold pass
	// (member-N.heap.pprof) and its CPU profile over the idle window
	// (member-N.idle.pprof). The
	// profiler's own sampling is then part of the idle CPU figure.
	Profile bool
	// Budget is each member's --budget ("" = manta's default).
	Budget string
	// Out gets progress lines (nil: none).
	Out io.Writer
}

// DefaultConfig is 3 members, 10,000 models, 10 requests per model, failover on.
func DefaultConfig() Config {
	return Config{Members: 3, Models: 10000, RequestsPerModel: 10, Failover: true}
}

func (c *Config) defaults() error {
	if c.Members == 0 {
		c.Members = 3
	}
	if c.Models == 0 {
		c.Models = 10000
	}
	if c.RequestsPerModel == 0 {
		c.RequestsPerModel = 10
	}
	if c.Concurrency == 0 {
		c.Concurrency = 1024 * c.Members
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 60 * time.Second
	}
	if c.LatencySamples == 0 {
		c.LatencySamples = 2000
	}
	if c.IdleSettle == 0 {
		c.IdleSettle = 30 * time.Second
	}
	if c.IdleWindow == 0 {
		c.IdleWindow = 10 * time.Second
	}
	if c.FailoverModels == 0 {
		c.FailoverModels = 200
	}
	if c.FailoverTimeout == 0 {
		c.FailoverTimeout = 60 * time.Second
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	switch {
	case c.Members < 1:
		return fmt.Errorf("clusterbench: members must be positive, got %d", c.Members)
	case c.Failover && c.Members < 2:
		return errors.New("clusterbench: failover needs at least 2 members")
	case c.Models < 1 || c.RequestsPerModel < 1 || c.Concurrency < 1 || c.LatencySamples < 1 || c.FailoverModels < 1:
		return errors.New("clusterbench: models, requests per model, concurrency, latency samples and failover models must be positive")
	case c.RequestTimeout < 0 || c.IdleWindow < 0 || c.FailoverTimeout < 0:
		return errors.New("clusterbench: durations must not be negative")
	case c.MantaBin == "":
		return errors.New("clusterbench: MantaBin (the manta executable) is not set")
	}
	return nil
}

// HandOverSlack is the longest overlap of two activations of one model
// accepted as a hand-over rather than a duplicate (the soak's rule: a
// make-before-break move or a duplicate found and stopped overlaps for
// milliseconds by design).
const HandOverSlack = 250 * time.Millisecond

// Report is what a run measured.
type Report struct {
	Members          int `json:"members"`
	Models           int `json:"models"`
	RequestsPerModel int `json:"requests_per_model"`
	Concurrency      int `json:"concurrency"`
	CPUs             int `json:"cpus"`

	Setup time.Duration `json:"setup_ns"` // etcd, Redis, models, members up

	Cold Pass `json:"cold"`
	Warm Pass `json:"warm"`

	SDK Latency `json:"sdk"` // Manta SDK Predict+Get, client → member process
	Raw Latency `json:"raw"` // raw protoactor cluster.Request, member → member
	// Ratio is SDK.P50 / Raw.P50 (0 when either is missing).
	Ratio float64 `json:"ratio"`

	// IdleCPU is each member's CPU use with no traffic, in % of one core.
	IdleCPU     []float64 `json:"idle_cpu_percent"`
	IdleCPUMax  float64   `json:"idle_cpu_max_percent"`
	IdleCPUMean float64   `json:"idle_cpu_mean_percent"`
	// IdleSettle is how long after the last request the idle window
	// opened (Config.IdleSettle, and the latency measurements before it).
	IdleSettle time.Duration `json:"idle_settle_ns"`

	// RSS of each member right after start and after the cold pass, bytes.
	RSSStart    []int64 `json:"rss_start_bytes"`
	RSSCold     []int64 `json:"rss_after_cold_bytes"`
	Activations int64   `json:"activations"` // sum of the members' activation counters after the cold pass
	// ActivationsPerMember are the members' active models after the cold pass.
	ActivationsPerMember []int `json:"active_per_member"`
	// RSSPerActivationKiB is (sum of RSS growth) / Activations.
	RSSPerActivationKiB float64 `json:"rss_per_activation_kib"`
	// RSSIdle is each member's RSS at the end of the idle window, bytes,
	// and RSSPerActivationIdleKiB the growth from the start to then per
	// activation: what keeping the activations costs once the cold
	// burst's garbage is collected and returned (the Go runtime returns
	// freed pages over a few minutes, so this is an upper bound too).
	RSSIdle                 []int64 `json:"rss_after_idle_bytes,omitempty"`
	RSSPerActivationIdleKiB float64 `json:"rss_per_activation_idle_kib,omitempty"`
	// OnTwoMembers counts models listed as active by more than one member
	// (each member's own status; the most at any check: after the cold
	// pass, after the warm pass, after the failover).
	OnTwoMembers int `json:"models_on_two_members"`
	// MembersSeen is, per member, the fewest members its status listed
	// once the cluster was up (after up to 20 s for the views to agree),
	// after the cold and after the warm pass (-1: it did not answer): less
	// than Members means the cluster split.
	MembersSeen []int `json:"members_seen"`

	Failover *Failover `json:"failover,omitempty"`

	// Overlaps are the times a model was active on two members at once,
	// from the members' activation logs; LongestOverlap the longest, and
	// LastingOverlaps how many lasted over HandOverSlack.
	Overlaps        []Overlap     `json:"overlaps,omitempty"`
	LongestOverlap  time.Duration `json:"longest_overlap_ns"`
	LastingOverlaps int           `json:"lasting_overlaps"`

	// MemberWarnings and MemberErrors count the WARN and ERROR lines the
	// members logged (MANTA_LOG_LEVEL=warn); MemberLogSamples are a few.
	MemberWarnings   int      `json:"member_warnings"`
	MemberErrors     int      `json:"member_errors"`
	MemberLogSamples []string `json:"member_log_samples,omitempty"`

	// Exact: every answer of every pass, of the latency measurement and of
	// the failover carried the expected prediction, and no cold, warm or
	// latency request failed. Failed counts those failed requests (errors,
	// wrong and missing answers); Requests all requests of those passes.
	Exact    bool  `json:"exact"`
	Failed   int64 `json:"failed"`
	Requests int64 `json:"requests"`

	Dir string `json:"dir"` // the working directory (logs of the members under Dir/logs when kept)
}

// Pass is one pass of requests through the stream.
type Pass struct {
	Name     string        `json:"name"`
	Requests int           `json:"requests"`
	Answered int           `json:"answered"` // with the expected prediction
	Errors   int           `json:"errors"`   // answered with an error
	Wrong    int           `json:"wrong"`    // answered with something else than the expected prediction
	Missing  int           `json:"missing"`  // no answer within RequestTimeout
	Extra    int           `json:"extra"`    // answers for requests already answered or given up (duplicates, late)
	Elapsed  time.Duration `json:"elapsed_ns"`
	Rate     float64       `json:"rate"` // correct answers per second
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	Max      time.Duration `json:"max_ns"`
	// ErrorCodes counts the error codes of failed answers; Samples are the
	// first few error messages.
	ErrorCodes map[string]int `json:"error_codes,omitempty"`
	Samples    []string       `json:"samples,omitempty"`
}

// Failed is errors + wrong + missing.
func (p *Pass) Failed() int { return p.Errors + p.Wrong + p.Missing }

// Latency is a sequential request latency measurement.
type Latency struct {
	Samples int           `json:"samples"`
	Errors  int           `json:"errors"`
	Wrong   int           `json:"wrong"`
	P50     time.Duration `json:"p50_ns"`
	P99     time.Duration `json:"p99_ns"`
	Err     string        `json:"error,omitempty"` // why it could not run
	Sample  string        `json:"sample,omitempty"`
}

// Failover is the kill -9 measurement.
type Failover struct {
	Victim        string `json:"victim"`         // its member name
	VictimModels  int    `json:"victim_models"`  // models active on it at the kill
	Models        int    `json:"models"`         // followed
	Answered      int    `json:"answered"`       // answered correctly within FailoverTimeout
	NeverAnswered int    `json:"never_answered"` // did not
	// From the kill to each followed model's first correct answer.
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
	// Attempts is the number of requests sent; failed attempts by error
	// code (and "no_answer" for an attempt unanswered after 5 s, "wrong"
	// for a wrong prediction) are what a caller saw before the model
	// answered again.
	Attempts       int            `json:"attempts"`
	FailedAttempts map[string]int `json:"failed_attempts,omitempty"`
	Wrong          int            `json:"wrong"`
	Samples        []string       `json:"samples,omitempty"`
	Never          []string       `json:"never,omitempty"` // models that never answered (first few)
}

// Run starts everything, measures and stops everything. On an error the
// report holds what was measured so far.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	b := &bench{cfg: cfg, rep: &Report{Members: cfg.Members, Models: cfg.Models,
		RequestsPerModel: cfg.RequestsPerModel, Concurrency: cfg.Concurrency, CPUs: numCPU()}}
	dir := cfg.Dir
	temp := dir == ""
	if temp {
		d, err := os.MkdirTemp("", "manta-bench-cluster-")
		if err != nil {
			return nil, err
		}
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	dir, _ = filepath.Abs(dir)
	b.dir = dir
	b.rep.Dir = dir
	defer func() {
		b.stopAll()
		if temp && !cfg.KeepDir {
			_ = os.RemoveAll(dir)
		}
	}()
	err := b.run(ctx)
	b.finish()
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return b.rep, err
}

// finish computes the summary fields and checks the activation logs (also
// after an error: what ran until then).
func (b *bench) finish() {
	r := b.rep
	if len(b.members) > 0 {
		end := time.Now().UnixNano()
		kills := map[string][]int64{}
		logs := map[string]string{}
		for i, m := range b.members {
			if m == nil {
				continue
			}
			logs[m.name] = b.actLogs[i]
			if m.killedAt != 0 {
				kills[m.name] = []int64{m.killedAt}
			}
		}
		ov, err := CheckActivationLogs(logs, kills, end)
		if err != nil {
			b.logf("%v", err)
		}
		r.Overlaps, r.LongestOverlap, r.LastingOverlaps = ov, 0, 0
		for _, o := range ov {
			r.LongestOverlap = max(r.LongestOverlap, o.Overlap)
			if o.Overlap > HandOverSlack {
				r.LastingOverlaps++
			}
		}
		if len(r.Overlaps) > 50 {
			r.Overlaps = r.Overlaps[:50]
		}
	}
	r.Requests = int64(r.Cold.Requests + r.Warm.Requests + r.SDK.Samples)
	r.Failed = int64(r.Cold.Failed() + r.Warm.Failed() + r.SDK.Errors + r.SDK.Wrong)
	wrong := r.Cold.Wrong + r.Warm.Wrong + r.SDK.Wrong + r.Raw.Wrong
	if r.Failover != nil {
		wrong += r.Failover.Wrong
	}
	r.Exact = r.Failed == 0 && wrong == 0 && r.Cold.Requests > 0 && r.Warm.Requests > 0
	for _, m := range b.members {
		if m == nil {
			continue
		}
		w, e, samples := m.logCounts()
		r.MemberWarnings += w
		r.MemberErrors += e
		for _, s := range samples {
			if len(r.MemberLogSamples) < 8 {
				r.MemberLogSamples = append(r.MemberLogSamples, m.name+": "+s)
			}
		}
	}
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.cfg.Out, "clusterbench: "+format+"\n", args...)
}

// percentile is latency.Quantile (the project's one) of an unsorted
// sample, sorted in a copy.
func percentile(d []time.Duration, p float64) time.Duration {
	return latency.Quantile(slices.Sorted(slices.Values(d)), p)
}

// code is the error code of an "code: message" error string.
func code(errStr string) string {
	if i := strings.IndexByte(errStr, ':'); i > 0 {
		return errStr[:i]
	}
	return errStr
}
