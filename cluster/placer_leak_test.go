package cluster

import (
	"bytes"
	"context"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	pcluster "github.com/asynkron/protoactor-go/cluster"

	"github.com/manta-ml/manta/internal/testenv"
)

// tickerGoroutines counts the goroutines running a placer's tick loop.
func tickerGoroutines() int {
	var b bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&b, 2)
	return strings.Count(b.String(), "cluster.(*placer).Receive.func")
}

// A member's placement ticker goroutine ends with the member: starting and
// shutting down members leaves none behind.
func TestPlacerTickerEndsWithTheMember(t *testing.T) {
	for i := 0; i < 3; i++ {
		cfg := DefaultConfig()
		kind := pcluster.NewKind(KindModel, actor.PropsFromProducer(func() actor.Actor { return &echo{reg: &registry{}} }))
		m, err := Start(context.Background(), cfg, kind)
		if err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 10*time.Second, "the placer's ticker to run", func() bool { return tickerGoroutines() > 0 })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := m.Shutdown(ctx, false); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	testenv.WaitFor(t, 10*time.Second, "no placer ticker goroutine after the members stopped", func() bool { return tickerGoroutines() == 0 })
}
