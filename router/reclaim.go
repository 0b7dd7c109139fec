package router

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// reclaimLoop claims, every ReclaimInterval (and once at start), entries
// that have been pending longer than MinIdle on any consumer of the group:
// a router that died, or this one before a restart. Claimed entries count
// against the in-flight limit like read ones.
func (r *Router) reclaimLoop(ctx context.Context) {
	t := time.NewTicker(r.cfg.ReclaimInterval)
	defer t.Stop()
	for {
		for _, s := range r.streams {
			if err := r.reclaim(ctx, s); err != nil && ctx.Err() == nil {
				r.c.redisErrors.Add(1)
				r.log.Warn("router: reclaim", "stream", s, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reclaim walks the pending entries of one stream with XAUTOCLAIM. An
// entry whose delivery count (XPENDING) exceeds MaxDeliveries is not
// served again but dead-lettered: it keeps killing or stalling routers.
func (r *Router) reclaim(ctx context.Context, stream string) error {
	cursor := "0-0"
	for ctx.Err() == nil {
		n := r.acquire(ctx, 1, r.cfg.BatchSize)
		if n == 0 {
			return nil
		}
		msgs, next, err := r.rdb.XAutoClaim(r.hardCtx, &redis.XAutoClaimArgs{
			Stream:   stream,
			Group:    r.cfg.Group,
			Consumer: r.cfg.Consumer,
			MinIdle:  r.cfg.MinIdle,
			Start:    cursor,
			Count:    int64(n),
		}).Result()
		if err != nil {
			r.release(n)
			if redis.HasErrorPrefix(err, "NOGROUP") {
				return r.ensureGroups(ctx)
			}
			return err
		}
		r.release(n - len(msgs))
		if len(msgs) > 0 {
			r.claimed(stream, msgs)
		}
		if next == "0-0" || next == "" {
			return nil
		}
		cursor = next
	}
	return nil
}

// claimed takes entries just claimed by XAUTOCLAIM (each holding a slot).
func (r *Router) claimed(stream string, msgs []redis.XMessage) {
	// Mark them in flight first, skipping those being served here already;
	// then look up the delivery counts. An entry of ours that was answered
	// and acknowledged between the claim and the mark is no longer pending:
	// absent from XPENDING, it is dropped rather than served twice.
	started := msgs[:0:0]
	for _, m := range msgs {
		if r.start1(stream, m.ID) {
			started = append(started, m)
		} else {
			r.release(1)
		}
	}
	if len(started) == 0 {
		return
	}
	counts, err := r.deliveries(stream, started)
	if err != nil {
		// Claimed but not looked up: serve them; their count is checked
		// again if they come back.
		r.log.Warn("router: delivery counts", "stream", stream, "err", err)
	}
	sd := r.newSharedDeadline()
	defer sd.release()
	for _, m := range started {
		c, pending := counts[m.ID]
		switch {
		case err == nil && !pending:
			r.done1(&job{stream: stream, msgID: m.ID})
		case c > int64(r.cfg.MaxDeliveries):
			r.c.reclaimed.Add(1)
			j := &job{stream: stream, msgID: m.ID, fields: m.Values, redelivered: true}
			j.deadLetter(ReasonMaxDeliveries, "delivered "+strconv.FormatInt(c, 10)+
				" times, more than max_deliveries "+strconv.Itoa(r.cfg.MaxDeliveries))
			r.out <- j
		default:
			r.c.reclaimed.Add(1)
			r.handle(stream, m, true, sd)
		}
	}
}

// deliveries returns the delivery counts of just-claimed entries (now ours,
// so XPENDING for this consumer over their id range finds them all).
func (r *Router) deliveries(stream string, msgs []redis.XMessage) (map[string]int64, error) {
	pend, err := r.rdb.XPendingExt(r.hardCtx, &redis.XPendingExtArgs{
		Stream:   stream,
		Group:    r.cfg.Group,
		Start:    msgs[0].ID,
		End:      msgs[len(msgs)-1].ID,
		Count:    int64(len(msgs) + r.cfg.InFlight + 1),
		Consumer: r.cfg.Consumer,
	}).Result()
	if err != nil {
		return nil, err
	}
	counts := make(map[string]int64, len(pend))
	for _, p := range pend {
		counts[p.ID] = p.RetryCount
	}
	return counts, nil
}
