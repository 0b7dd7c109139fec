package router

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/internal/backoff"
)

// job is one entry on its way out: a result for its reply_to stream or a
// dead letter, then the acknowledgement.
type job struct {
	stream      string                 // request stream
	msgID       string                 // entry id there
	fields      map[string]interface{} // the entry as read, for dead letters
	redelivered bool

	dead     bool
	ackOnly  bool          // a feedback entry taken: acknowledged, nothing written
	replyTo  string        // result stream, for a result
	values   []interface{} // fields to XADD
	modelErr bool

	// Storage for values and the XADD arguments of a result: one
	// allocation per entry rather than three.
	resultValues [14]interface{}
	args         redis.XAddArgs
}

// result makes j carry the answer to e.
func (j *job) result(consumer string, e Entry, resp *api.PredictResponse, took time.Duration) {
	model := resp.GetModelId()
	if model == "" {
		model = e.Model
	}
	servedBy := resp.GetServedBy()
	if servedBy == "" {
		servedBy = consumer
	}
	errText := formatError(resp.GetError())
	j.modelErr = errText != ""
	j.replyTo = e.ReplyTo
	j.resultValues = [14]interface{}{
		FieldID, e.ID,
		FieldModel, model,
		FieldVersion, resp.GetModelVersion(),
		FieldOutput, resp.GetOutput(),
		FieldError, errText,
		FieldLatencyUS, strconv.FormatInt(took.Microseconds(), 10),
		FieldServedBy, servedBy,
	}
	j.values = j.resultValues[:]
}

// deadLetter makes j a dead letter: the entry's fields (sorted by name),
// then the reason, a detail and where the entry came from.
func (j *job) deadLetter(reason, detail string) {
	j.dead = true
	j.replyTo = ""
	keys := make([]string, 0, len(j.fields))
	for k := range j.fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	vals := make([]interface{}, 0, 2*len(keys)+8)
	for _, k := range keys {
		vals = append(vals, k, j.fields[k])
	}
	j.values = append(vals,
		FieldReason, reason,
		FieldDetail, detail,
		FieldSourceStream, j.stream,
		FieldSourceID, j.msgID)
}

// formatError renders a model error as the result's error field,
// "code: message" ("" for none).
func formatError(e *api.Error) string {
	if e == nil || (e.Code == api.ErrorCode_ERROR_CODE_UNSPECIFIED && e.Message == "") {
		return ""
	}
	code := e.Code.Name()
	if code == "" {
		code = "internal"
	}
	msg := e.Message
	// Messages built with api.Errorf start with the sentinel's text
	// ("manta: not_found: …"); do not say the code twice.
	msg = strings.TrimPrefix(msg, "manta: "+code+": ")
	msg = strings.TrimPrefix(msg, code+": ")
	if msg == "" || msg == "manta: "+code {
		return code
	}
	return code + ": " + msg
}

// writeLoop writes finished entries in batches, one pipeline per batch,
// until r.out is closed.
func (r *Router) writeLoop() {
	batch := make([]*job, 0, maxWriteBatch)
	for j := range r.out {
		batch = append(batch[:0], j)
	drain:
		for len(batch) < maxWriteBatch {
			select {
			case j, ok := <-r.out:
				if !ok {
					break drain
				}
				batch = append(batch, j)
			default:
				break drain
			}
		}
		r.flush(batch)
	}
}

// flush writes the results and dead letters of batch and then, and only
// for those written, acknowledges their entries. The two steps are two
// pipelines rather than one: in a single pipeline (or MULTI) an XACK runs
// even when the XADD before it failed (OOM, WRONGTYPE), and that entry
// would be lost. Failures of the connection are retried with backoff
// until the hard stop; an XADD that Redis refuses for good (reply_to is
// not a stream, ACL) turns the result into a dead letter reply_failed.
func (r *Router) flush(batch []*job) {
	ctx := r.hardCtx
	var ackOnly []*job
	pending := batch[:0:0]
	for _, j := range batch {
		if j.ackOnly {
			ackOnly = append(ackOnly, j)
		} else {
			pending = append(pending, j)
		}
	}
	r.ack(ackOnly)
	bo := backoff.New(r.cfg.RetryMin, r.cfg.RetryMax)
	cmds := make([]*redis.StringCmd, 0, len(batch))
	for len(pending) > 0 {
		if ctx.Err() != nil {
			for _, j := range pending {
				r.abandon(j)
			}
			return
		}
		pipe := r.rdb.Pipeline()
		cmds = cmds[:0]
		for _, j := range pending {
			cmds = append(cmds, pipe.XAdd(ctx, r.xaddArgs(j)))
		}
		_, _ = pipe.Exec(ctx) // errors are per command, below
		r.c.writeBatches.Add(1)
		var written, retry []*job
		var lastErr error
		for i, j := range pending {
			err := cmds[i].Err()
			switch {
			case err == nil:
				written = append(written, j)
			case permanent(err) && !j.dead:
				r.log.Warn("router: result refused, dead-lettering the entry",
					"reply_to", j.replyTo, "id", j.msgID, "err", err)
				j.deadLetter(ReasonReplyFailed, "XADD "+j.replyTo+": "+err.Error())
				retry = append(retry, j)
			case permanent(err):
				// The dead stream itself refuses: leave the entry pending.
				r.log.Error("router: dead stream refuses writes; entry left pending",
					"dead_stream", r.cfg.DeadStream, "id", j.msgID, "err", err)
				r.abandon(j)
			default:
				lastErr = err
				retry = append(retry, j)
			}
		}
		r.ack(written)
		pending = retry
		if lastErr != nil {
			r.c.redisErrors.Add(1)
			r.log.Warn("router: write results", "err", lastErr, "retrying", len(retry))
			if !bo.Wait(ctx) {
				for _, j := range pending {
					r.abandon(j)
				}
				return
			}
		}
	}
}

func (r *Router) xaddArgs(j *job) *redis.XAddArgs {
	j.args = redis.XAddArgs{Stream: j.replyTo, Values: j.values}
	if j.dead {
		j.args.Stream = r.cfg.DeadStream
	} else if r.cfg.ResultMaxLen > 0 {
		j.args.MaxLen, j.args.Approx = r.cfg.ResultMaxLen, true
	}
	return &j.args
}

// ack acknowledges the entries of written jobs (one XACK per stream),
// retrying while Redis is unreachable. A missing group (Redis restarted
// without persistence) means there is nothing left to acknowledge.
func (r *Router) ack(written []*job) {
	if len(written) == 0 {
		return
	}
	ctx := r.hardCtx
	byStream := map[string][]string{}
	for _, j := range written {
		byStream[j.stream] = append(byStream[j.stream], j.msgID)
	}
	bo := backoff.New(r.cfg.RetryMin, r.cfg.RetryMax)
	for len(byStream) > 0 {
		pipe := r.rdb.Pipeline()
		cmds := map[string]*redis.IntCmd{}
		for s, ids := range byStream {
			cmds[s] = pipe.XAck(ctx, s, r.cfg.Group, ids...)
		}
		_, _ = pipe.Exec(ctx)
		var lastErr error
		for s, cmd := range cmds {
			n, err := cmd.Result()
			switch {
			case err == nil:
				r.c.acked.Add(n)
				delete(byStream, s)
			case redis.HasErrorPrefix(err, "NOGROUP"):
				delete(byStream, s)
			default:
				lastErr = err
			}
		}
		if lastErr == nil {
			break
		}
		r.c.redisErrors.Add(1)
		r.log.Warn("router: acknowledge", "err", lastErr)
		if !bo.Wait(ctx) {
			// Written but not acknowledged: another router will serve
			// these again (a duplicate result, never a lost one).
			for _, j := range written {
				if _, left := byStream[j.stream]; left {
					r.abandon(j)
				}
			}
			written = slices.DeleteFunc(written, func(j *job) bool {
				_, left := byStream[j.stream]
				return left
			})
			break
		}
	}
	for _, j := range written {
		switch {
		case j.dead:
			r.c.dead.Add(1)
		case j.ackOnly:
			r.c.feedback.Add(1)
		default:
			r.c.results.Add(1)
			if j.modelErr {
				r.c.modelErrors.Add(1)
			}
		}
		if j.redelivered {
			r.c.redelivered.Add(1)
		}
		r.done1(j)
	}
}

// permanent reports whether Redis refused a command for good (retrying
// cannot help), as opposed to a lost connection or a transient state such
// as OOM, LOADING or a full client table.
func permanent(err error) bool {
	var re redis.Error
	if !errors.As(err, &re) || errors.Is(err, context.Canceled) {
		return false
	}
	msg := re.Error()
	switch {
	case strings.HasPrefix(msg, "WRONGTYPE"), strings.HasPrefix(msg, "NOPERM"):
		return true
	case strings.HasPrefix(msg, "ERR max number of clients"):
		return false
	case strings.HasPrefix(msg, "ERR "):
		return true
	}
	return false
}
