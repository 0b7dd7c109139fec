package router

import (
	"context"
	"errors"
	"fmt"
)

// GroupInfo is the consumer group's state on one request stream: entries
// delivered but not acknowledged (Pending) and entries not yet delivered
// (Lag, from Redis 7's XINFO GROUPS; -1 when Redis cannot tell).
type GroupInfo struct {
	Stream  string
	Group   string
	Pending int64
	Lag     int64
}

// Groups reads the group's state on every request stream (for metrics:
// manta_stream_pending_entries, manta_stream_lag_entries).
func (r *Router) Groups(ctx context.Context) ([]GroupInfo, error) {
	var out []GroupInfo
	var errs []error
	for _, s := range r.streams {
		groups, err := r.rdb.XInfoGroups(ctx, s).Result()
		if err != nil {
			errs = append(errs, fmt.Errorf("router: XINFO GROUPS %s: %w", s, err))
			continue
		}
		for _, g := range groups {
			if g.Name == r.cfg.Group {
				out = append(out, GroupInfo{Stream: s, Group: g.Name, Pending: g.Pending, Lag: g.Lag})
			}
		}
	}
	return out, errors.Join(errs...)
}
