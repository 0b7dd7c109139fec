package clusterbench

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/remote"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/manta-ml/manta"
	"github.com/manta-ml/manta/cluster"
)

// sdkLatency is the p50 of sequential Predict+Get from a Connect client (this
// process) to the member processes, over models active since the passes.
func (b *bench) sdkLatency(ctx context.Context) Latency {
	var out Latency
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cfg := manta.DefaultConfig()
	cfg.Cluster.Provider = cluster.ProviderEtcd
	cfg.Cluster.Etcd = []string{b.etcd}
	c, err := manta.Connect(cctx, cfg)
	if err != nil {
		out.Err = fmt.Sprintf("connect: %v", err)
		return out
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Close(sctx)
	}()
	n := b.cfg.LatencySamples
	call := func(k int) (time.Duration, error) {
		j := (k * 7919) % b.cfg.Models
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		t := time.Now()
		res, err := c.Model(b.ids[j]).Predict(rctx, payload(k)).Get(rctx)
		d := time.Since(t)
		if err != nil {
			return d, err
		}
		if w := check(res.Model, res.Version, string(res.Output), expected(j, k), b.ids[j]); w != "" {
			out.Wrong++
			return d, fmt.Errorf("%s: %s", b.ids[j], w)
		}
		return d, nil
	}
	// Warm-up: the client's connections and lookups (not counted). The
	// first requests may fail while the client learns the members.
	for k := 0; k < min(200, n); k++ {
		if ctx.Err() != nil {
			return out
		}
		_, _ = call(n + k)
	}
	measure(ctx, &out, n, call)
	return out
}

// rawLatency is the baseline: two members of a raw protoactor-go cluster in
// this process (etcd provider, disthash lookup, a cluster name and prefix of
// their own), an echo kind on one of them only, and sequential
// cluster.Request calls from the other: each crosses the gRPC remote.
func rawLatency(ctx context.Context, etcdEP string, n int) Latency {
	var out Latency
	quiet := cluster.QuietLogger()
	start := func(kinds ...*pcluster.Kind) (*pcluster.Cluster, error) {
		system := actor.NewActorSystem(
			actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }),
			actor.WithDeadLetterRequestLogging(false))
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		prov, err := etcd.NewWithConfig("/clusterbench-raw", clientv3.Config{Endpoints: []string{etcdEP}, DialTimeout: 5 * time.Second})
		if err != nil {
			return nil, fmt.Errorf("etcd provider: %w", err)
		}
		ccfg := pcluster.Configure("raw-echo", prov, disthash.New(), remote.Configure("127.0.0.1", port),
			pcluster.WithKinds(kinds...), pcluster.WithRequestTimeout(5*time.Second))
		c := pcluster.New(system, ccfg)
		done := make(chan error, 1)
		go func() {
			defer func() {
				if r := recover(); r != nil { // StartMember panics on provider errors
					done <- fmt.Errorf("start member: %v", r)
				}
			}()
			c.StartMember()
			done <- nil
		}()
		t := time.NewTimer(30 * time.Second)
		defer t.Stop()
		select {
		case err := <-done:
			if err != nil {
				return nil, err
			}
			return c, nil
		case <-t.C:
			return nil, fmt.Errorf("start member: not started after 30s")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	stop := func(c *pcluster.Cluster) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			defer func() { _ = recover() }()
			c.Shutdown(false)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
	}
	echo := pcluster.NewKind("echo", actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(*wrapperspb.BytesValue); ok {
			c.Respond(m)
		}
	}))
	server, err := start(echo)
	if err != nil {
		out.Err = "raw protoactor: " + err.Error()
		return out
	}
	defer stop(server)
	caller, err := start()
	if err != nil {
		out.Err = "raw protoactor: " + err.Error()
		return out
	}
	defer stop(caller)
	msg := payload(1)
	call := func(k int) (time.Duration, error) {
		t := time.Now()
		// Options per call: never the shared default call config.
		res, err := caller.Request(fmt.Sprintf("echo-%d", k%100), "echo", &wrapperspb.BytesValue{Value: msg},
			pcluster.WithTimeout(5*time.Second), pcluster.WithRetryCount(3))
		d := time.Since(t)
		if err != nil {
			return d, err
		}
		if m, ok := res.(*wrapperspb.BytesValue); !ok || string(m.Value) != string(msg) {
			out.Wrong++
			return d, fmt.Errorf("echo answered %T %v", res, res)
		}
		return d, nil
	}
	// Warm-up until the caller sees the echo member (bounded), then the
	// 100 identities activated.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := call(0); err == nil {
			break
		} else if time.Now().After(deadline) || ctx.Err() != nil {
			out.Err = fmt.Sprintf("raw protoactor: no echo answer within 30s: %v", err)
			return out
		}
		_ = sleep(ctx, 100*time.Millisecond)
	}
	for k := 0; k < 200; k++ {
		_, _ = call(k)
	}
	measure(ctx, &out, n, call)
	return out
}

// measure makes n sequential calls (after the caller's warm-up) and fills
// out's samples, errors and p50/p99. call counts the wrong answers it sees
// in out.Wrong and returns them as errors too; a wrong answer is counted
// once, as wrong.
func measure(ctx context.Context, out *Latency, n int, call func(k int) (time.Duration, error)) {
	out.Wrong = 0
	lats := make([]time.Duration, 0, n)
	for k := 0; k < n && ctx.Err() == nil; k++ {
		d, err := call(k)
		out.Samples++
		if err != nil {
			out.Errors++
			if out.Sample == "" {
				out.Sample = err.Error()
			}
			continue
		}
		lats = append(lats, d)
	}
	out.Errors -= out.Wrong
	out.P50, out.P99 = percentile(lats, 0.5), percentile(lats, 0.99)
}
