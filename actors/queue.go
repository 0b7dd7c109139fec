package actors

import (
	"sync/atomic"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/manta-ml/manta/api"
)

// mailboxQueue counts the predict requests waiting in the mailboxes of a
// host's model actors: a protoactor mailbox middleware, shared by every
// model actor's mailbox of the host (posted minus received; a message left
// in a stopped actor's mailbox is still received, and dropped, by it).
type mailboxQueue struct{ n atomic.Int64 }

func isPredict(m any) bool {
	if env, ok := m.(*actor.MessageEnvelope); ok {
		m = env.Message
	}
	_, ok := m.(*api.PredictRequest)
	return ok
}

func (q *mailboxQueue) MailboxStarted() {}

func (q *mailboxQueue) MessagePosted(m any) {
	if isPredict(m) {
		q.n.Add(1)
	}
}

func (q *mailboxQueue) MessageReceived(m any) {
	if isPredict(m) {
		q.n.Add(-1)
	}
}

func (q *mailboxQueue) MailboxEmpty() {}

// QueueDepth is the number of predict requests waiting in the mailboxes of
// this host's model actors (manta_member_queue_depth_requests).
func (h *Host) QueueDepth() int { return int(max(h.queue.n.Load(), 0)) }

var _ actor.MailboxMiddleware = (*mailboxQueue)(nil)
