package manta

import (
	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/modelhost"
)

// Errors every call can return, one per error code of the closed set, checked
// with errors.Is. They are the same values as api.Err*, so errors that crossed
// a process (or came back over HTTP) match too.
var (
	ErrNotFound         = api.ErrNotFound         // no such model (or version)
	ErrBadInput         = api.ErrBadInput         // the payload is wrong for the model
	ErrLoadFailed       = api.ErrLoadFailed       // the model could not be fetched, verified or loaded
	ErrTooLarge         = api.ErrTooLarge         // the model fits in no member's memory budget, or the payload is over Config.MaxPayloadBytes
	ErrOverloaded       = api.ErrOverloaded       // no capacity right now; retry later
	ErrDeadlineExceeded = api.ErrDeadlineExceeded // no answer by the deadline
	ErrInternal         = api.ErrInternal         // a bug or a crash (model panic, worker died)
)

// TooLargeError carries the figures of a too_large error.
type TooLargeError = modelhost.TooLargeError
