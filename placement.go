package manta

import (
	"context"

	"github.com/manta-ml/manta/cluster"
)

// Where tells where model id is active: its directory's record of the
// model and of its hot-model replicas (id@1..id@k), with each member's
// address and HTTP address. It activates nothing; a model that is not
// active has no activations. (`manta where MODEL`.)
func (c *Client) Where(ctx context.Context, id string) (*cluster.Where, error) {
	return c.member.Where(ctx, id)
}

// Loads returns every member's load as the members gossip it: budget,
// used, pinned and active bytes, models loaded, request rate, the
// activations it hosts, and its placement counters (directory, activator,
// rebalancer). A member reads its own gossip; a Connect client asks the
// cluster's leader. (`manta status`.)
func (c *Client) Loads(ctx context.Context) ([]cluster.MemberLoad, error) {
	return c.member.Loads(ctx)
}
