package s3store

import (
	"context"
	"sync"
	"time"
)

// Progress is how far one upload got, for drawing a progress bar.
type Progress struct {
	ID, Version, Path string
	Bytes             int64         // uploaded so far
	Total             int64         // file size; -1 if unknown
	Rate              float64       // bytes per second since the upload started
	ETA               time.Duration // time left at Rate; -1 if unknown
	Done              bool          // the last report of this file
}

type progressKey struct{}

// WithProgress returns a context under which Put reports each file's
// upload progress to fn: at most every 100 ms while bytes are uploaded (as
// multipart parts are sent), and once more with Done set when the file is
// complete. fn may be called from several goroutines, one file at a time
// per goroutine; it must not block for long.
//
//	ctx = s3store.WithProgress(ctx, func(p s3store.Progress) { bar.Set(p.Bytes, p.Total) })
//	err := modelhost.Push(ctx, store, dir)
func WithProgress(ctx context.Context, fn func(Progress)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}

func progressFrom(ctx context.Context) func(Progress) {
	fn, _ := ctx.Value(progressKey{}).(func(Progress))
	return fn
}

// progressInterval bounds how often fn is called for one file.
const progressInterval = 100 * time.Millisecond

// progressReader is minio-go's PutObjectOptions.Progress: minio-go "reads"
// from it the bytes it has sent.
type progressReader struct {
	fn    func(Progress)
	p     Progress
	start time.Time

	mu   sync.Mutex
	last time.Time
}

func newProgressReader(fn func(Progress), id, version, path string, total int64) *progressReader {
	if total < 0 {
		total = -1
	}
	return &progressReader{fn: fn, p: Progress{ID: id, Version: version, Path: path, Total: total}, start: time.Now()}
}

func (r *progressReader) Read(b []byte) (int, error) {
	r.mu.Lock()
	r.p.Bytes += int64(len(b))
	now := time.Now()
	if now.Sub(r.last) < progressInterval {
		r.mu.Unlock()
		return len(b), nil
	}
	r.last = now
	p := r.snapshot(now)
	r.mu.Unlock()
	r.fn(p)
	return len(b), nil
}

func (r *progressReader) finish() {
	r.mu.Lock()
	if r.p.Total >= 0 {
		r.p.Bytes = r.p.Total
	}
	p := r.snapshot(time.Now())
	r.mu.Unlock()
	p.Done, p.ETA = true, 0
	r.fn(p)
}

// snapshot computes rate and ETA; r.mu held.
func (r *progressReader) snapshot(now time.Time) Progress {
	p := r.p
	p.ETA = -1
	if el := now.Sub(r.start).Seconds(); el > 0 {
		p.Rate = float64(p.Bytes) / el
	}
	if p.Rate > 0 && p.Total >= 0 {
		p.ETA = time.Duration(float64(max(p.Total-p.Bytes, 0)) / p.Rate * float64(time.Second))
	}
	return p
}
