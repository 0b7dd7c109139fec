package s3store

import (
	"context"

	"github.com/manta-ml/manta/modelhost"
)

type progressKey struct{}

// WithProgress returns a context under which Put reports each file's
// upload progress to fn (a modelhost.ProgressMeter per file): at most every
// modelhost.ProgressInterval while bytes are uploaded (as multipart parts
// are sent), and once more with Done set when the file is complete. fn may
// be called from several goroutines, one file at a time per goroutine; it
// must not block for long.
//
//	ctx = s3store.WithProgress(ctx, func(p modelhost.Progress) { bar.Set(p.Bytes, p.Total) })
//	err := modelhost.Push(ctx, store, dir)
func WithProgress(ctx context.Context, fn func(modelhost.Progress)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

func progressFrom(ctx context.Context) func(modelhost.Progress) {
	fn, _ := ctx.Value(progressKey{}).(func(modelhost.Progress))
	return fn
}

// sentBytes is minio-go's PutObjectOptions.Progress: minio-go "reads" from
// it the bytes it has sent.
type sentBytes struct{ m *modelhost.ProgressMeter }

func (s sentBytes) Read(b []byte) (int, error) {
	s.m.Add(int64(len(b)))
	return len(b), nil
}
