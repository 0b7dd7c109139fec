// Package manta is the Go SDK of Manta, a Ray-like actor framework for
// serving thousands of ML models on a Proto.Actor cluster.
//
// Every model is a virtual actor: it always exists by name, is activated on
// demand on a member, loads its artifacts lazily from the model store (a
// directory, or MinIO/S3), serves micro-batched predictions and is
// deactivated when idle (its model stays warm in the member's memory cache
// until the budget needs the room).
//
// Start embeds a member in this process (the default: one member, provider
// local, the ./models directory); Connect joins a running cluster as a
// client. Predict returns a future (*Ref) at once; Get waits for it, GetAll
// waits for many in order, Wait returns the first n ready, like ray.wait:
//
//	c, err := manta.Start(ctx, manta.DefaultConfig())
//	if err != nil { ... }
//	defer c.Close(ctx)
//	ref := c.Model("eta-eu-road").Predict(ctx, []byte(`{"features":[412, 3, 1]}`))
//	res, err := ref.Get(ctx)
//	// res.Output, res.Version (which version answered), res.ServedBy
//
// Errors are checked with errors.Is against ErrNotFound, ErrBadInput,
// ErrLoadFailed, ErrTooLarge, ErrOverloaded, ErrDeadlineExceeded and
// ErrInternal: the closed set of error codes of docs/ARCHITECTURE.md, the same across
// processes and over HTTP. A wait that ctx ends wraps ctx's error: an
// expired ctx is both ErrDeadlineExceeded and context.DeadlineExceeded, a
// cancelled one context.Canceled. GetAll joins the error of every failed
// Ref (errors.Join), so errors.Is finds each.
//
// The SDK links no store or runtime driver beyond directories and the
// linear and go runtimes. A program imports those it wants, as
// database/sql users import a driver:
//
//	import (
//		_ "github.com/manta-ml/manta/modelhost/s3store" // s3:// stores
//		_ "github.com/manta-ml/manta/pyworker"          // the python runtime
//	)
//
// Close of the process's last embedded member also closes the runtimes'
// worker processes (modelhost.CloseRuntimes: the Python workers).
//
// Each member also serves HTTP (Config.HTTPAddr): POST
// /v1/models/{id}/predict and GET /v1/status, which the manta command uses.
package manta
