package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/modelhost"
)

// A canary is a second version an activation serves to a share of its
// requests (a conditional promotion: `manta models promote --if-better
// --canary 10%`, docs/ARCHITECTURE.md §6). A request goes to it when the
// FNV-1a hash of its request id falls in the share (the same id always
// goes the same way), or when it pins the canary's version. The canary
// lives in memory only: a stopped activation forgets it, and the
// promotion keeps re-sending its CanaryRequest. The activation keeps a
// quality tracker while a canary runs, so both versions' live quality
// is measured on the same traffic.

// canaryLoaded carries the canary version's lease to the actor.
type canaryLoaded struct {
	lease *modelhost.Lease
	err   error
	reply *actor.PID
	share float64
}

// onCanary starts, changes or ends (share 0) the canary.
func (a *modelActor) onCanary(ctx actor.Context, msg *api.CanaryRequest) {
	resp := &api.CanaryResponse{ModelId: a.id, Version: msg.Version, Share: msg.Share}
	respond := func() {
		if a.cur != nil {
			resp.Serving = a.cur.lease.Manifest().Version
		}
		if ctx.Sender() != nil {
			ctx.Respond(resp)
		}
	}
	switch {
	case msg.Share < 0 || msg.Share > 1:
		resp.Error = api.ErrorFrom(api.Errorf(api.ErrorCode_ERROR_CODE_BAD_INPUT, "canary share %v: want 0 to 1", msg.Share))
		respond()
		return
	case a.state == stateFailed:
		resp.Error = api.ErrorFrom(a.failErr)
		respond()
		return
	case msg.Share == 0:
		a.endCanary()
		respond()
		return
	case modelhost.ValidVersion(msg.Version) != nil:
		resp.Error = api.ErrorFrom(api.Errorf(api.ErrorCode_ERROR_CODE_BAD_INPUT, "canary version %q is not a version", msg.Version))
		respond()
		return
	case a.cur != nil && a.cur.lease.Manifest().Version == msg.Version:
		a.endCanary() // the version is served to everyone already
		respond()
		return
	case a.canary != nil && a.canary.lease.Manifest().Version == msg.Version:
		a.canaryShare = msg.Share
		respond()
		return
	}
	a.tracker() // both versions' quality, measured on the same traffic
	self, sys, host, id, life, sender, version := a.self, a.system, a.host, a.id, a.life, ctx.Sender(), msg.Version
	go func() {
		lease, err := acquire(life.ctx, host, id, version)
		life.deliver(sys, self, lease, &canaryLoaded{lease: lease, err: err, reply: sender, share: msg.Share})
	}()
}

func (a *modelActor) onCanaryLoaded(msg *canaryLoaded) {
	resp := &api.CanaryResponse{ModelId: a.id, Share: msg.share}
	switch {
	case msg.err != nil:
		resp.Error = api.ErrorFrom(msg.err)
	case a.state == stateStopping || a.state == stateFailed:
		msg.lease.Release()
		resp.Error = api.ErrorFrom(api.Errorf(api.ErrorCode_ERROR_CODE_OVERLOADED, "model %s: the activation is stopping", a.id))
	default:
		v := msg.lease.Manifest().Version
		resp.Version = v
		if a.cur != nil && a.cur.lease.Manifest().Version == v {
			msg.lease.Release()
			break
		}
		a.endCanary()
		a.canary = &leaseRef{lease: msg.lease}
		a.canaryShare = msg.share
		a.maybeReference()
	}
	if a.cur != nil {
		resp.Serving = a.cur.lease.Manifest().Version
	}
	if msg.reply != nil {
		a.system.Root.Send(msg.reply, resp)
	}
}

// endCanary releases the canary (now, or after its last batch).
func (a *modelActor) endCanary() {
	if a.canary != nil {
		a.canary.retire()
		a.canary = nil
	}
	a.canaryShare = 0
}

// toCanary says whether request p goes to the canary.
func (a *modelActor) toCanary(p pending) bool {
	if a.canary == nil {
		return false
	}
	if v := p.req.Version; v != "" {
		return v == a.canary.lease.Manifest().Version
	}
	h := uint32(2166136261) // FNV-1a, inline: no allocation per request
	for i := 0; i < len(p.req.RequestId); i++ {
		h ^= uint32(p.req.RequestId[i])
		h *= 16777619
	}
	return float64(h%10000) < a.canaryShare*10000
}
