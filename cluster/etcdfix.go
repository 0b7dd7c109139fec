package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"time"
	"unsafe"

	"github.com/asynkron/protoactor-go/cluster/clusterproviders/etcd"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Proto.Actor's etcd provider reads the member list, then starts watching
// for changes without continuing from the revision of that read (and on a
// goroutine): a member that registers between the two is never seen by
// the one starting, since lease keep-alives make no events. With several
// members starting at once, some keep a partial view for good: the
// directory's owners then differ between members, activations double and
// requests bounce ("activation kept disappearing").
//
// rePutEtcdKey works around it from the other side: a few times after its
// start, a member writes its own registration again, unchanged and under
// the same lease (WithIgnoreLease). Every watcher started by then sees a
// PUT and learns the member.
var etcdRePuts = []time.Duration{time.Second, 3 * time.Second, 7 * time.Second, 15 * time.Second}

// rePutEtcdKey runs the re-puts for the member registered under key
// (prefix/cluster/cluster@memberID) until stop is closed.
func rePutEtcdKey(endpoints []string, key string, stop <-chan struct{}, logger *slog.Logger) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		logger.Debug("cluster: etcd re-put: client", slog.Any("error", err))
		return
	}
	defer cli.Close()
	start := time.Now()
	for _, at := range etcdRePuts {
		t := time.NewTimer(time.Until(start.Add(at)))
		select {
		case <-stop:
			t.Stop()
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := cli.Get(ctx, key)
		if err == nil && len(resp.Kvs) == 1 {
			_, err = cli.Put(ctx, key, string(resp.Kvs[0].Value), clientv3.WithIgnoreLease())
		}
		cancel()
		if err != nil {
			logger.Debug("cluster: etcd re-put", slog.String("key", key), slog.Any("error", err))
		}
	}
}

// DefaultEtcdTTL is Config.EtcdTTL's default.
const DefaultEtcdTTL = 3 * time.Second

// setEtcdTTL sets the lease TTL of Proto.Actor's etcd provider, which it
// fixes at 3 s in an unexported field with no option: under load (16
// member processes on 2 cores) a member's keep-alive stalled past 3 s, its
// registration expired, the others blocked its id for good (Proto.Actor's
// MemberList blocks every member that leaves), and the cluster split into
// views that disagree on directory owners (doubled activations, requests
// bounced until their deadline). The field is found by name and type: a
// Proto.Actor that renames it makes this an error at start, which the
// tests (TestEtcdLeaseTTL) see.
func setEtcdTTL(p *etcd.Provider, ttl time.Duration) error {
	if ttl < 2*time.Second || ttl%time.Second != 0 {
		return fmt.Errorf("cluster: etcd lease TTL %v: whole seconds, at least 2s", ttl)
	}
	f := reflect.ValueOf(p).Elem().FieldByName("keepAliveTTL")
	if !f.IsValid() || f.Type() != reflect.TypeOf(time.Duration(0)) {
		return fmt.Errorf("cluster: this Proto.Actor's etcd provider has no keepAliveTTL duration field: cannot set the lease TTL")
	}
	*(*time.Duration)(unsafe.Pointer(f.UnsafeAddr())) = ttl
	return nil
}
