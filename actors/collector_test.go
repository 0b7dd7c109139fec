package actors_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/manta-ml/manta/actors"
	"github.com/manta-ml/manta/actors/strategy"
	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/testenv"
)

// Collector tests on a bare actor system, with plain actors standing in for
// model actors. The integration tests with real model actors are in the
// root package (speculate_test.go).

// fakeModel answers every PredictRequest with output, or stays silent when
// output is nil.
func fakeModel(sys *actor.ActorSystem, version string, output []byte) *actor.PID {
	return sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		req, ok := ctx.Message().(*api.PredictRequest)
		if !ok || output == nil {
			return
		}
		ctx.Respond(&api.PredictResponse{RequestId: req.RequestId, ModelId: req.ModelId, ModelVersion: version,
			Output: output, ContentType: "application/json", ServedBy: "fake"})
	}))
}

// inbox spawns an actor that hands every PredictResponse it receives to a
// channel: the requester of a collector.
func inbox(sys *actor.ActorSystem) (*actor.PID, chan *api.PredictResponse) {
	ch := make(chan *api.PredictResponse, 4)
	pid := sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if r, ok := ctx.Message().(*api.PredictResponse); ok {
			ch <- r
		}
	}))
	return pid, ch
}

func receive(t *testing.T, ch chan *api.PredictResponse) *api.PredictResponse {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no answer from the collector")
		return nil
	}
}

type env struct {
	sys    *actor.ActorSystem
	cs     *actors.Collectors
	mu     sync.Mutex
	pids   map[string]*actor.PID
	forgot atomic.Int64
}

func newEnv(t *testing.T, cfg actors.CollectorConfig) *env {
	t.Helper()
	e := &env{sys: actor.NewActorSystem(), pids: map[string]*actor.PID{}}
	t.Cleanup(e.sys.Shutdown)
	if cfg.Resolve == nil {
		cfg.Resolve = e.resolve
	}
	cfg.Forget = func(string, *actor.PID) { e.forgot.Add(1) }
	if cfg.LateGrace == 0 {
		cfg.LateGrace = 50 * time.Millisecond
	}
	cs, err := actors.NewCollectors(e.sys, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.cs = cs
	return e
}

func (e *env) resolve(id string) (*actor.PID, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if pid, ok := e.pids[id]; ok {
		return pid, nil
	}
	return nil, fmt.Errorf("no model %s", id)
}

func (e *env) model(id string, pid *actor.PID) {
	e.mu.Lock()
	e.pids[id] = pid
	e.mu.Unlock()
}

func (e *env) speculate(t *testing.T, name string, params map[string]string, timeout time.Duration, models ...string) *api.PredictResponse {
	t.Helper()
	st, err := strategy.New(name, params)
	if err != nil {
		t.Fatal(err)
	}
	cands := make([]strategy.Candidate, len(models))
	for i, m := range models {
		cands[i] = strategy.Candidate{Model: m}
	}
	reply, ch := inbox(e.sys)
	_, err = e.cs.Spawn(actors.Speculation{Strategy: st, Params: params, Candidates: cands, ReplyTo: reply,
		Request: &api.PredictRequest{RequestId: "req-1", Payload: []byte(`{}`), Deadline: time.Now().Add(timeout).UnixNano()}})
	if err != nil {
		t.Fatal(err)
	}
	return receive(t, ch)
}

func (e *env) waitIdle(t *testing.T) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, "every collector to end", func() bool { return e.cs.Active() == 0 })
}

func TestCollectorAnswersWithWinner(t *testing.T) {
	e := newEnv(t, actors.CollectorConfig{})
	e.model("a", fakeModel(e.sys, "3", []byte(`{"prediction":1}`)))
	resp := e.speculate(t, strategy.NameFirstSuccess, nil, 5*time.Second, "a")
	if resp.Error != nil {
		t.Fatal(resp.Error.Err())
	}
	if resp.RequestId != "req-1" || resp.ModelId != "a" || resp.ModelVersion != "3" || resp.Strategy != strategy.NameFirstSuccess ||
		resp.Calls != 1 || string(resp.Output) != `{"prediction":1}` || resp.ServedBy != "fake" {
		t.Fatalf("response %v", resp)
	}
	e.waitIdle(t)
	if st := e.cs.Stats().Get(strategy.NameFirstSuccess); st.Requests != 1 || st.Wins["a"] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCollectorResolveFails(t *testing.T) {
	e := newEnv(t, actors.CollectorConfig{})
	resp := e.speculate(t, strategy.NameFirstSuccess, nil, 5*time.Second, "missing")
	if err := resp.Error.Err(); !errors.Is(err, api.ErrOverloaded) {
		t.Fatalf("err = %v, want overloaded", err)
	}
	e.waitIdle(t)
}

// A call sent to an activation that is gone is sent again to the new one.
func TestCollectorDeadActivationRetried(t *testing.T) {
	var tries atomic.Int64
	var e *env
	live := atomic.Pointer[actor.PID]{}
	dead := atomic.Pointer[actor.PID]{}
	e = newEnv(t, actors.CollectorConfig{Resolve: func(id string) (*actor.PID, error) {
		if tries.Add(1) == 1 {
			return dead.Load(), nil
		}
		return live.Load(), nil
	}})
	gone := fakeModel(e.sys, "1", []byte(`1`))
	if err := e.sys.Root.StopFuture(gone).Wait(); err != nil {
		t.Fatal(err)
	}
	dead.Store(gone)
	live.Store(fakeModel(e.sys, "2", []byte(`2`)))
	resp := e.speculate(t, strategy.NameFirstSuccess, nil, 5*time.Second, "m")
	if resp.Error != nil || resp.ModelVersion != "2" {
		t.Fatalf("response %v", resp)
	}
	if tries.Load() != 2 || e.forgot.Load() != 1 {
		t.Fatalf("resolved %d times, forgot %d PIDs; want 2 and 1", tries.Load(), e.forgot.Load())
	}
}

// A model that never answers: the request ends at its deadline and the
// collector goes away after its wait for late results.
func TestCollectorDeadline(t *testing.T) {
	e := newEnv(t, actors.CollectorConfig{})
	e.model("silent", fakeModel(e.sys, "1", nil))
	resp := e.speculate(t, strategy.NameFirstSuccess, nil, 50*time.Millisecond, "silent")
	if err := resp.Error.Err(); !errors.Is(err, api.ErrDeadlineExceeded) {
		t.Fatalf("err = %v, want deadline_exceeded", err)
	}
	e.waitIdle(t)
	if st := e.cs.Stats().Get(strategy.NameFirstSuccess); st.DeadlineExceeded != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// deadline-fallback over a silent smart model answers with the fast one.
func TestCollectorFallback(t *testing.T) {
	e := newEnv(t, actors.CollectorConfig{})
	e.model("smart", fakeModel(e.sys, "1", nil))
	e.model("fast", fakeModel(e.sys, "9", []byte(`{"prediction":0}`)))
	resp := e.speculate(t, strategy.NameDeadlineFallback, nil, 80*time.Millisecond, "smart", "fast")
	if resp.Error != nil || resp.ModelId != "fast" || resp.ModelVersion != "9" || !resp.Fallback || resp.Calls != 2 {
		t.Fatalf("response %v", resp)
	}
}

type boom struct{}

func (boom) Name() string { return "boom" }
func (boom) Start(_ *strategy.Request, c []strategy.Candidate) strategy.Plan {
	return strategy.Plan{Launches: []strategy.Launch{{Model: c[0].Model}}}
}
func (boom) OnEvent(strategy.Event, *strategy.Progress) strategy.Decision { panic("boom") }

func TestCollectorStrategyPanics(t *testing.T) {
	e := newEnv(t, actors.CollectorConfig{})
	e.model("a", fakeModel(e.sys, "1", []byte(`1`)))
	reply, ch := inbox(e.sys)
	if _, err := e.cs.Spawn(actors.Speculation{Strategy: boom{}, Candidates: []strategy.Candidate{{Model: "a"}}, ReplyTo: reply,
		Request: &api.PredictRequest{RequestId: "x", Deadline: time.Now().Add(5 * time.Second).UnixNano()}}); err != nil {
		t.Fatal(err)
	}
	resp := receive(t, ch)
	if err := resp.Error.Err(); !errors.Is(err, api.ErrInternal) {
		t.Fatalf("err = %v, want internal", err)
	}
	e.waitIdle(t)
}

func TestCollectorSpawnArguments(t *testing.T) {
	e := newEnv(t, actors.CollectorConfig{})
	if _, err := e.cs.Spawn(actors.Speculation{}); err == nil {
		t.Fatal("Spawn without strategy, request and requester: no error")
	}
	if _, err := actors.NewCollectors(e.sys, actors.CollectorConfig{}); err == nil {
		t.Fatal("NewCollectors without Resolve: no error")
	}
}

// A call whose activation stops without answering it (protoactor drops
// what is left in a stopped actor's mailbox) is found by the sweeper and
// sent again.
func TestCollectorLostCallResent(t *testing.T) {
	var tries atomic.Int64
	var vanishing, live atomic.Pointer[actor.PID]
	e := newEnv(t, actors.CollectorConfig{Resolve: func(string) (*actor.PID, error) {
		if tries.Add(1) == 1 {
			return vanishing.Load(), nil
		}
		return live.Load(), nil
	}})
	vanishing.Store(e.sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if _, ok := ctx.Message().(*api.PredictRequest); ok {
			ctx.Stop(ctx.Self()) // deactivates with the request unanswered
		}
	})))
	live.Store(fakeModel(e.sys, "2", []byte(`2`)))
	resp := e.speculate(t, strategy.NameFirstSuccess, nil, 10*time.Second, "m")
	if resp.Error != nil || resp.ModelVersion != "2" {
		t.Fatalf("response %v", resp)
	}
	if tries.Load() != 2 || e.forgot.Load() != 1 {
		t.Fatalf("resolved %d times, forgot %d PIDs; want 2 and 1", tries.Load(), e.forgot.Load())
	}
	e.waitIdle(t)
}
