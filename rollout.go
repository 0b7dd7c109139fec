package manta

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/manta-ml/manta/actors"
)

// rollout runs the member's version poller until the client closes.
type rollout struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (c *Client) startRollout() {
	if c.host == nil {
		return
	}
	interval := c.cfg.PollInterval
	if interval == 0 {
		interval = DefaultConfig().PollInterval
	}
	if interval < 0 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.roll.cancel = cancel
	c.roll.wg.Add(1)
	go func() {
		defer c.roll.wg.Done()
		c.host.PollVersions(ctx, interval)
	}()
}

func (c *Client) stopRollout() {
	if c.roll.cancel != nil {
		c.roll.cancel()
		c.roll.wg.Wait()
	}
}

// ReloadLocal asks the activations of model id on this member to look for a
// new version now (the store webhook calls this). It returns how many
// activations it asked.
func (c *Client) ReloadLocal(id string) int {
	if c.host == nil {
		return 0
	}
	return c.host.ReloadLocal(id)
}

// WebhookMount lets a store add its change-notification endpoint to the
// member's HTTP server (e.g. MinIO's webhook target); see Config.Webhooks.
type WebhookMount func(onChange func(modelID string)) (pattern string, h http.Handler)

// logActivations writes a line when an activation starts serving (its
// model loaded) and when it stops, to w.
func logActivations(h *actors.Host, w io.Writer) {
	var mu sync.Mutex
	line := func(sign, identity string) {
		mu.Lock()
		fmt.Fprintf(w, "%d %s %s\n", time.Now().UnixNano(), sign, identity)
		mu.Unlock()
	}
	prevR, prevD := h.OnReady, h.OnDeactivate
	h.OnReady = func(identity string) {
		line("+", identity)
		if prevR != nil {
			prevR(identity)
		}
	}
	h.OnDeactivate = func(identity string) {
		line("-", identity)
		if prevD != nil {
			prevD(identity)
		}
	}
}
