package manta_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"

	"github.com/manta-ml/manta"
)

// TestExpiredCtxIsBothDeadlineErrors: a Ref ended by an expired ctx (the
// Predict's or the Get's) is errors.Is both manta.ErrDeadlineExceeded and
// context.DeadlineExceeded; a cancelled one is context.Canceled.
func TestExpiredCtxIsBothDeadlineErrors(t *testing.T) {
	root := t.TempDir()
	writeSleep(t, root, "slow", time.Hour) // answers only when its request's ctx ends
	c := startMember(t, root, nil)
	bg := context.Background()
	m := c.Model("slow")
	// Requests the test leaves pending end by their own short deadline,
	// before the member closes.
	var pending []*manta.Ref
	predict := func() *manta.Ref {
		r := m.Predict(bg, []byte(`{}`), manta.WithTimeout(2*time.Second))
		pending = append(pending, r)
		return r
	}
	defer func() {
		for _, r := range pending {
			<-r.Done()
		}
	}()

	expired, cancel := context.WithTimeout(bg, time.Millisecond)
	defer cancel()
	_, err := m.Predict(expired, []byte(`{}`)).Get(bg) // the Ref ends with its ctx
	if !errors.Is(err, manta.ErrDeadlineExceeded) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Predict(expired ctx).Get: err = %v, want ErrDeadlineExceeded and context.DeadlineExceeded", err)
	}
	_, err = predict().Get(expired) // the wait ends with its ctx
	if !errors.Is(err, manta.ErrDeadlineExceeded) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get(expired ctx): err = %v, want ErrDeadlineExceeded and context.DeadlineExceeded", err)
	}
	if _, err := manta.GetAll(expired, []*manta.Ref{predict()}); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, manta.ErrDeadlineExceeded) {
		t.Errorf("GetAll(expired ctx): err = %v", err)
	}
	if _, _, err := manta.Wait(expired, []*manta.Ref{predict()}, 1); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, manta.ErrDeadlineExceeded) {
		t.Errorf("Wait(expired ctx): err = %v", err)
	}

	// The member (or the sweeper) may tell of the ctx's deadline before
	// the ctx watch does: still both errors. (A ctx whose Done never
	// closes makes the member tell first every time.)
	if _, err := m.Predict(deadlineOnly{bg, time.Now().Add(-time.Millisecond)}, []byte(`{}`)).Get(bg); !errors.Is(err, manta.ErrDeadlineExceeded) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline_exceeded answer of a Ref with ctx's deadline: err = %v, want ErrDeadlineExceeded and context.DeadlineExceeded", err)
	}

	cancelled, cancelNow := context.WithCancel(bg)
	cancelNow()
	if _, err := m.Predict(cancelled, []byte(`{}`)).Get(bg); !errors.Is(err, context.Canceled) || errors.Is(err, manta.ErrDeadlineExceeded) {
		t.Errorf("Predict(cancelled ctx).Get: err = %v, want context.Canceled", err)
	}
	if _, err := predict().Get(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("Get(cancelled ctx): err = %v, want context.Canceled", err)
	}
}

// TestGetAllJoinsEveryError: GetAll reports every failed Ref, not only the
// first, and still returns the results of the others.
func TestGetAllJoinsEveryError(t *testing.T) {
	root := t.TempDir()
	mustLinear(t, root, "lin", "1", []float64{1}, 0)
	c := startMember(t, root, nil)
	ctx := context.Background()
	refs := []*manta.Ref{
		c.Model("lin").Predict(ctx, []byte(`{"features":[2]}`)),
		c.Model("nope").Predict(ctx, []byte(`{}`)),                  // not_found
		c.Model("lin").Predict(ctx, []byte(`{"features":[1,2,3]}`)), // bad_input
	}
	res, err := manta.GetAll(ctx, refs)
	if !errors.Is(err, manta.ErrNotFound) || !errors.Is(err, manta.ErrBadInput) {
		t.Fatalf("GetAll: err = %v, want both ErrNotFound and ErrBadInput", err)
	}
	if res[0] == nil || prediction(t, res[0].Output) != 2 {
		t.Fatalf("GetAll: the successful result is missing: %+v", res[0])
	}
}

// TestStatusHonoursCtx: Status asks the other members under its ctx; a
// ctx that is already cancelled or expired gives ctx's error at once
// (Status used to ask each member in turn for up to 5 s, ignoring ctx).
func TestStatusHonoursCtx(t *testing.T) {
	agent := test.NewInMemAgent()
	local := func(cfg *manta.Config) { cfg.Cluster.LocalAgent = agent }
	a := startMember(t, t.TempDir(), local)
	startMember(t, t.TempDir(), local)
	bg := context.Background()
	waitFor(t, 20*time.Second, func() bool {
		st, err := a.Status(bg)
		return err == nil && len(st.Members) == 2 && st.Members[0].Error == "" && st.Members[1].Error == "" &&
			st.Members[0].BudgetBytes > 0 && st.Members[1].BudgetBytes > 0
	}, "both members answering Status")

	cancelled, cancel := context.WithCancel(bg)
	cancel()
	if st, err := a.Status(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("Status(cancelled ctx) = %+v, %v; want context.Canceled", st, err)
	}
	expired, cancel2 := context.WithDeadline(bg, time.Now().Add(-time.Second))
	defer cancel2()
	if st, err := a.Status(expired); !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, manta.ErrDeadlineExceeded) {
		t.Errorf("Status(expired ctx) = %+v, %v; want context.DeadlineExceeded", st, err)
	}
}

// deadlineOnly is a ctx with a deadline whose Done never closes.
type deadlineOnly struct {
	context.Context
	d time.Time
}

func (c deadlineOnly) Deadline() (time.Time, bool) { return c.d, true }
