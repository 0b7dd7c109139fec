package manta

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/cluster"
	"github.com/manta-ml/manta/internal/httpjson"
	"github.com/manta-ml/manta/modelhost"
)

// Canary makes the model's activations (id and its replicas) serve
// version to share (0 to 1) of their requests, beside the version they
// serve; share 0 ends it. The split is by request id (the same id always
// goes the same way); a request pinned to version gets it. Both versions'
// live quality is measured on the same traffic (Quality lists them). The
// canary lives in the activations' memory: one that stops forgets it, so
// a caller running a canary sends this again from time to time (manta
// models promote --if-better does, every poll). It returns the version
// the other requests get.
func (m *Model) Canary(ctx context.Context, version string, share float64) (serving string, err error) {
	if err := modelhost.ValidID(m.id); err != nil {
		return "", err
	}
	if share < 0 || share > 1 {
		return "", api.Errorf(api.ErrorCode_ERROR_CODE_BAD_INPUT, "canary share %v: want 0 to 1", share)
	}
	if share > 0 {
		if err := modelhost.ValidVersion(version); err != nil {
			return "", err
		}
	}
	deadline := m.c.deadline(ctx, callOptions{})
	for k := 0; k <= m.c.member.Replicas(m.id); k++ {
		resp, err := m.c.call(ctx, cluster.ReplicaIdentity(m.id, k), &api.CanaryRequest{ModelId: m.id, Version: version, Share: share}, deadline).response(ctx)
		if err != nil {
			return "", err
		}
		cr, ok := resp.(*api.CanaryResponse)
		if !ok {
			return "", fmt.Errorf("%w: unexpected answer %T to canary", ErrInternal, resp)
		}
		if err := cr.Error.Err(); err != nil {
			return "", err
		}
		if k == 0 {
			serving = cr.Serving
		}
	}
	return serving, nil
}

// httpCanary is POST /v1/models/{id}/canary {"version", "share"}.
func (c *Client) httpCanary(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Version string   `json:"version"`
		Share   *float64 `json:"share"`
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<16))
	if err == nil {
		err = json.Unmarshal(b, &body)
	}
	if err != nil || body.Share == nil {
		writeErr(w, api.ErrorCode_ERROR_CODE_BAD_INPUT, `want {"version": "...", "share": 0.1} (share 0 ends the canary)`)
		return
	}
	id := r.PathValue("id")
	serving, err := c.Model(id).Canary(r.Context(), body.Version, *body.Share)
	if err != nil {
		writeErr(w, api.CodeOf(err), err.Error())
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"model": id, "version": body.Version, "share": *body.Share, "serving": serving})
}
