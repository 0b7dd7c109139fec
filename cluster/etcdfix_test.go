package cluster

import (
	"context"
	"log/slog"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/manta-ml/manta/internal/testenv"
)

// The re-put writes the member's registration again, unchanged and under
// its lease, so a watcher that started after the first write (and missed
// it) sees the member.
func TestRePutEtcdKeyReachesLateWatchers(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcd.Endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lease, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	const key, value = "/manta/manta/manta@m1", `{"id":"manta@m1"}`
	put, err := cli.Put(ctx, key, value, clientv3.WithLease(lease.ID))
	if err != nil {
		t.Fatal(err)
	}
	// A watcher from just after the registration (as a member whose watch
	// began after its read) sees nothing of it... (From that revision, so
	// that a re-put made before the watch is registered is not missed by
	// the test itself.)
	w := cli.Watch(ctx, "/manta/manta/", clientv3.WithPrefix(), clientv3.WithRev(put.Header.Revision+1))
	saved := etcdRePuts
	etcdRePuts = []time.Duration{100 * time.Millisecond}
	defer func() { etcdRePuts = saved }()
	stop := make(chan struct{})
	defer close(stop)
	go rePutEtcdKey([]string{etcd.Endpoint}, key, stop, slog.New(slog.DiscardHandler))
	// ...until the re-put.
	select {
	case resp := <-w:
		if len(resp.Events) != 1 || string(resp.Events[0].Kv.Key) != key || string(resp.Events[0].Kv.Value) != value {
			t.Fatalf("watch saw %+v", resp.Events)
		}
		if got := clientv3.LeaseID(resp.Events[0].Kv.Lease); got != lease.ID {
			t.Fatalf("re-put under lease %x, want the registration's %x", got, lease.ID)
		}
	case <-ctx.Done():
		t.Fatal("the late watcher never saw the member's registration")
	}
}

// A member's etcd registration is under a lease of Config.EtcdTTL, not
// Proto.Actor's fixed 3 s (a member stalled past 3 s was blocked by the
// others for good).
func TestEtcdLeaseTTL(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	cfg := DefaultConfig()
	cfg.Provider = ProviderEtcd
	cfg.Etcd = []string{etcd.Endpoint}
	cfg.EtcdPrefix = "/ttltest"
	cfg.EtcdTTL = 7 * time.Second
	cfg.Logger = QuietLogger()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	m, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(ctx, false)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{etcd.Endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(ctx, "/ttltest/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 {
		t.Fatalf("%d registrations under /ttltest/, want 1", len(resp.Kvs))
	}
	ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(resp.Kvs[0].Lease))
	if err != nil {
		t.Fatal(err)
	}
	if ttl.GrantedTTL != 7 {
		t.Fatalf("registration lease granted for %d s, want 7", ttl.GrantedTTL)
	}

	bad := cfg
	bad.EtcdTTL = 1500 * time.Millisecond
	if err := bad.Validate(); err == nil {
		t.Fatal("an etcd TTL of 1.5s was accepted")
	}
}
