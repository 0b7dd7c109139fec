package modelhost

import (
	"context"
	"errors"
	"io"
	"net/http"
)

// A Runtime that holds resources outside the Go heap (the python runtime's
// worker processes) implements io.Closer, found by type assertion like
// ManifestChecker. CloseRuntimes calls it when the last member of the
// process closes. The registry outlives members, so a closed runtime must
// accept a later Load (starting its resources anew).

// CloseRuntimes closes every registered runtime that implements io.Closer
// and returns their errors joined. The SDK's Client.Close calls it when
// the last embedded member of the process closes; a program that uses
// runtimes without the SDK calls it at exit.
func CloseRuntimes() error {
	runtimesMu.RLock()
	var closers []io.Closer
	for _, r := range runtimes {
		if c, ok := r.(io.Closer); ok {
			closers = append(closers, c)
		}
	}
	runtimesMu.RUnlock()
	var errs []error
	for _, c := range closers {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// WorkerReporter is an optional interface of a Runtime that runs models in
// worker processes: the SDK exports its figures as metrics
// (manta_python_workers_alive, ..._worker_restarts_total,
// manta_python_model_memory_bytes). ok is false while the runtime has
// started no worker; a report must not start any.
type WorkerReporter interface {
	WorkerStats(ctx context.Context) (s WorkerStats, ok bool)
}

// WorkerStats are a worker runtime's figures.
type WorkerStats struct {
	Alive       int   // worker processes running
	Restarts    int   // restarts after a crash, kill or stall
	MemoryBytes int64 // measured memory of the loaded models
}

// ChangeNotifier is an optional interface of a Store that hears of changes
// through an HTTP callback (the S3 store's MinIO webhook). The SDK's
// member serves ChangeHandler at POST /v1/hooks/minio: for each changed
// model it calls onChange with the model's id. token, when not empty, is
// the bearer token the caller must present.
type ChangeNotifier interface {
	ChangeHandler(onChange func(modelID string), token string) http.Handler
}
