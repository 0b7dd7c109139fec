package cluster

import (
	"context"
	"log/slog"
	"time"

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
