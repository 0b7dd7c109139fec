package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/devcerts"
)

// Members with certificates from one CA talk over mutual TLS; a member whose
// certificate another CA signed cannot exchange a message with them.
func TestRemoteMutualTLS(t *testing.T) {
	trusted, err := devcerts.NewCA("manta test CA")
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := devcerts.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	tc := newTestCluster(t)
	// start starts a member whose certificate ca signed; it trusts trust
	// (ca when nil).
	start := func(ca *devcerts.CA, name string, skipCheck bool, trust ...*devcerts.CA) (*Member, error) {
		leaf, err := ca.Issue(name, "127.0.0.1", "localhost")
		if err != nil {
			t.Fatal(err)
		}
		trusts := ca
		if len(trust) > 0 {
			trusts = trust[0]
		}
		files, err := devcerts.WriteFiles(t.TempDir(), trusts, name, leaf)
		if err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig()
		cfg.LocalAgent = tc.agent
		cfg.Source = &fakeSource{budget: 1 << 30}
		cfg.Placement.Rebalance.Disabled = true
		cfg.TLS = TLSConfig{CertFile: files.Cert, KeyFile: files.Key, CAFile: files.CA}
		cfg.Logger = tc.logger
		cfg.skipPeerCheck = skipCheck
		kind := pcluster.NewKind(KindModel, actor.PropsFromProducer(func() actor.Actor { return &echo{reg: tc.reg} }))
		m, err := Start(context.Background(), cfg, kind)
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = m.Shutdown(ctx, false)
		})
		return m, nil
	}
	must := func(m *Member, err error) *Member {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a := must(start(trusted, "a", false))
	b := must(start(trusted, "b", false))
	// A member whose certificate another CA signed does not join: Start
	// finds the members refuse it, deregisters and says why.
	if _, err := start(rogue, "c", false); !errors.Is(err, ErrPeerRefused) {
		t.Fatalf("a member with another CA's certificate: %v, want ErrPeerRefused", err)
	} else {
		t.Logf("rogue member refused: %v", err)
	}
	// One that trusts the cluster's CA but whose certificate another CA
	// signed is refused by the members (their alert after the handshake).
	if _, err := start(rogue, "d", false, trusted); !errors.Is(err, ErrPeerRefused) {
		t.Fatalf("a member the cluster does not trust: %v, want ErrPeerRefused", err)
	} else {
		t.Logf("untrusted member refused: %v", err)
	}
	waitCond(t, "a and b see only each other", func() bool { return len(a.Members()) == 2 && len(b.Members()) == 2 })
	// Even a process that skips that check gets no answer from a.
	c := must(start(rogue, "c2", true))
	if _, err := a.System.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &echo{reg: tc.reg} }), "tls-echo"); err != nil {
		t.Fatal(err)
	}
	target := actor.NewPID(a.Address(), "tls-echo")
	res, err := b.System.Root.RequestFuture(target, &api.PredictRequest{ModelId: "x", RequestId: "from-b"}, 10*time.Second).Result()
	if err != nil {
		t.Fatalf("b (same CA) -> a over TLS: %v", err)
	}
	if r, ok := res.(*api.PredictResponse); !ok || r.RequestId != "from-b" {
		t.Fatalf("b -> a: answer %v", res)
	}
	res, err = c.System.Root.RequestFuture(target, &api.PredictRequest{ModelId: "x", RequestId: "from-c"}, 3*time.Second).Result()
	if err == nil {
		if r, ok := res.(*api.PredictResponse); ok && r.RequestId == "from-c" {
			t.Fatal("c, whose certificate another CA signed, got an answer from a")
		}
	}
	t.Logf("c -> a: %v %v", res, err)
}

func TestTLSConfigValidate(t *testing.T) {
	if err := (TLSConfig{CertFile: "x.pem"}).Validate(); err == nil {
		t.Fatal("a cert without key and CA was accepted")
	}
	cfg := DefaultConfig()
	cfg.TLS = TLSConfig{CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem", CAFile: "/nonexistent/ca.pem"}
	if _, err := Start(context.Background(), cfg); err == nil {
		t.Fatal("missing TLS files did not fail the start")
	}
}
