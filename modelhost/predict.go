package modelhost

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/manta-ml/manta/api"
)

// SafePredict calls m.Predict at the plugin boundary: a panic becomes an
// error wrapping api.ErrInternal (with the stack in the message, so the
// member lives and the bug can be found), and a model that answers with the
// wrong number of outputs is an api.ErrInternal error too, so callers can
// index outputs by input without checking.
func SafePredict(ctx context.Context, m Model, batch []Input) (out []Output, err error) {
	defer func() {
		if r := recover(); r != nil {
			out = nil
			err = fmt.Errorf("%w: model panicked: %v\n%s", api.ErrInternal, r, debug.Stack())
		}
	}()
	out, err = m.Predict(ctx, batch)
	if err != nil {
		return nil, err
	}
	if len(out) != len(batch) {
		return nil, fmt.Errorf("%w: model returned %d outputs for %d inputs", api.ErrInternal, len(out), len(batch))
	}
	return out, nil
}
