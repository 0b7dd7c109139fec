package s3store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/manta-ml/manta/api"
	"github.com/manta-ml/manta/modelhost"
)

// Fetch makes m's files available in a local directory and returns it;
// every file in it has been verified against the manifest's sha256.
//
// Files already in the disk cache and trusted (see diskCache) are used
// without contacting the server: a model on disk loads while the server is
// down. Others are downloaded into a temporary file while their sha256 is
// computed in the same pass (files of at least Config.ParallelThreshold
// bytes with Config.Workers parallel ranged GETs, hashed in order as the
// parts arrive) and renamed into place only once verified. A mismatch
// deletes the temporary file and fails with a *modelhost.VerifyError naming
// the file, wrapping api.ErrLoadFailed; an unreachable server fails with
// an error wrapping api.ErrLoadFailed and ErrUnreachable, quickly
// (Config.MaxRetries).
//
// Concurrent fetches of a file share one download. Cancelling ctx returns
// at once; the download goes on while another caller still waits for it.
// The directory stays valid until the version is evicted from the disk
// cache (least recently used first, never while a Fetch of it runs), so
// load it right after Fetch returns.
func (s *Store) Fetch(ctx context.Context, m *modelhost.Manifest) (string, error) {
	if m == nil {
		return "", fmt.Errorf("%w: s3store: fetch: nil manifest", api.ErrBadInput)
	}
	if err := m.Validate(); err != nil {
		return "", err
	}
	if err := s.cache.init(); err != nil {
		return "", loadFailed(fmt.Errorf("fetch %s v%s: %w", m.ID, m.Version, err))
	}
	s.cache.pin(m.ID, m.Version)
	defer s.cache.unpin(m.ID, m.Version)
	dir := s.cache.versionDir(m.ID, m.Version)
	for _, f := range m.Files {
		if err := s.fetchFile(ctx, m, f, dir); err != nil {
			return "", err
		}
	}
	s.cache.touch(m.ID, m.Version)
	s.cache.evict(m.ID, m.Version)
	return dir, nil
}

func (s *Store) fetchFile(ctx context.Context, m *modelhost.Manifest, f modelhost.File, dir string) error {
	dst := filepath.Join(dir, filepath.FromSlash(f.Path))
	if s.cache.trusted(m.ID, m.Version, f, dst) {
		s.hits.Add(1)
		return nil
	}
	key := m.ID + "/" + m.Version + "/" + f.Path
	err, _ := s.flights.do(ctx, key, func(ctx context.Context) error {
		if s.cache.trusted(m.ID, m.Version, f, dst) {
			return nil // fetched by a run that just finished
		}
		if st, err := os.Stat(dst); err == nil && st.Mode().IsRegular() && st.Size() == f.Size {
			// On disk but not trusted (no marker, or written before the
			// last boot): hash it instead of downloading it again.
			s.rehashes.Add(1)
			if modelhost.VerifyFile(dst, f) == nil {
				return s.cache.record(m.ID, m.Version, f, dst)
			}
		}
		s.cache.forgetFile(m.ID, m.Version, f.Path)
		os.Remove(dst)
		return s.download(ctx, m, f, dst)
	})
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("fetch %s v%s %s: %w", m.ID, m.Version, f.Path, err)
		}
		return err
	}
	return nil
}

// download streams one file into a temporary file, hashing it in the same
// pass, and renames it to dst once verified.
func (s *Store) download(ctx context.Context, m *modelhost.Manifest, f modelhost.File, dst string) (err error) {
	key := s.keys.file(m.ID, m.Version, f.Path)
	tmp, err := os.CreateTemp(s.cache.tmpDir(), "dl-*")
	if err != nil {
		return loadFailed(fmt.Errorf("fetch %s v%s %s: %w", m.ID, m.Version, f.Path, err))
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	var n int64
	var sum string
	if f.Size >= s.cfg.ParallelThreshold && f.Size > s.cfg.PartSize {
		n, sum, err = s.getParallel(ctx, key, f.Size, tmp)
	} else {
		n, sum, err = s.getSingle(ctx, key, f.Size, tmp)
	}
	if err != nil {
		var ve *modelhost.VerifyError
		if errors.As(err, &ve) {
			ve.File = f.Path
			return fmt.Errorf("fetch %s v%s: %w", m.ID, m.Version, err)
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return loadFailed(fmt.Errorf("fetch %s v%s: get %s: %w", m.ID, m.Version, f.Path, err))
	}
	if n != f.Size {
		return fmt.Errorf("fetch %s v%s: %w", m.ID, m.Version,
			&modelhost.VerifyError{File: f.Path, Problem: fmt.Sprintf("size mismatch: want %d got %d", f.Size, n)})
	}
	if sum != f.SHA256 {
		return fmt.Errorf("fetch %s v%s: %w", m.ID, m.Version,
			&modelhost.VerifyError{File: f.Path, Problem: fmt.Sprintf("sha256 mismatch: want %s got %s", f.SHA256, sum)})
	}
	if err := tmp.Close(); err != nil {
		return loadFailed(fmt.Errorf("fetch %s v%s %s: %w", m.ID, m.Version, f.Path, err))
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return loadFailed(fmt.Errorf("fetch %s v%s %s: %w", m.ID, m.Version, f.Path, err))
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return loadFailed(fmt.Errorf("fetch %s v%s %s: %w", m.ID, m.Version, f.Path, err))
	}
	s.downloads.Add(1)
	if err := s.cache.record(m.ID, m.Version, f, dst); err != nil {
		return loadFailed(fmt.Errorf("fetch %s v%s %s: record: %w", m.ID, m.Version, f.Path, err))
	}
	return nil
}

// Single-stream downloads go through a three-stage pipeline of
// pipeChunks buffers of pipeChunk bytes: the network read, the hash and
// the file write each run on their own goroutine, on different buffers.
const (
	pipeChunk  = 1 << 20
	pipeChunks = 8
)

// getSingle downloads key with one GET into f, hashing as it writes.
func (s *Store) getSingle(ctx context.Context, key string, want int64, f *os.File) (int64, string, error) {
	// Cancelling this context (a failed write) also aborts the body read.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	rc, info, _, err := s.core.GetObject(ctx, s.cfg.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return 0, "", s.wrap(err, "get %s", key)
	}
	defer rc.Close()
	if info.Size >= 0 && info.Size != want {
		// Known from the headers: refuse without reading the body.
		return 0, "", &modelhost.VerifyError{Problem: fmt.Sprintf("size mismatch: want %d got %d", want, info.Size)}
	}
	preallocate(f, want)
	if want <= pipeChunk {
		// Small: no goroutines.
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(f, h), countReader{rc, &s.bytes})
		if err != nil {
			return n, "", s.wrap(err, "get %s", key)
		}
		return n, hex.EncodeToString(h.Sum(nil)), nil
	}

	free := make(chan []byte, pipeChunks)
	for range pipeChunks {
		free <- s.bufs.get(pipeChunk)
	}
	defer func() {
		for range len(free) {
			s.bufs.put(<-free)
		}
	}()
	toHash := make(chan []byte, pipeChunks)
	toWrite := make(chan []byte, pipeChunks)
	var wg sync.WaitGroup
	var n int64
	wg.Go(func() { // network
		defer close(toHash)
		for {
			var buf []byte
			select {
			case buf = <-free:
			case <-ctx.Done():
				return
			}
			k, err := io.ReadFull(rc, buf)
			s.bytes.Add(int64(k))
			n += int64(k)
			if k > 0 {
				toHash <- buf[:k]
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return
			}
			if err != nil {
				cancel(s.wrap(err, "get %s", key))
				return
			}
		}
	})
	h := sha256.New()
	wg.Go(func() { // hash, in order
		defer close(toWrite)
		for buf := range toHash {
			h.Write(buf)
			toWrite <- buf
		}
	})
	wg.Go(func() { // file
		failed := false
		for buf := range toWrite {
			if !failed {
				if _, err := f.Write(buf); err != nil {
					cancel(err)
					failed = true
				}
			}
			free <- buf[:cap(buf)]
		}
	})
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return n, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

type countReader struct {
	r interface{ Read([]byte) (int, error) }
	n interface{ Add(int64) int64 }
}

func (c countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// part is one ranged GET of getParallel. Its worker fills buf in steps
// of partStep bytes, writing each step to the file at its offset and then
// publishing how far it got (filled) and waking the hasher (notify). The
// buffer goes back to the free list when both the worker and the hasher
// are done with it (refs).
type part struct {
	index  int
	off    int64
	buf    []byte
	filled atomic.Int64
	notify chan struct{}
	refs   atomic.Int32
}

// partStep is how much a worker reads before publishing progress.
const partStep = 1 << 20

// getParallel downloads a size-byte object with ranged GETs pinned to one
// ETag, Workers at a time, each into its own PartSize buffer. The hash
// follows the lowest unfinished part as its bytes arrive (not when the
// part is complete), so it runs right behind the network, and the other
// workers fetch ahead of it: the data is read from the network once, and
// never read back from the file. At most 2*Workers buffers exist.
func (s *Store) getParallel(ctx context.Context, key string, size int64, f *os.File) (int64, string, error) {
	info, err := s.client.StatObject(ctx, s.cfg.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return 0, "", s.wrap(err, "stat %s", key)
	}
	if info.Size != size {
		return 0, "", &modelhost.VerifyError{Problem: fmt.Sprintf("size mismatch: want %d got %d", size, info.Size)}
	}
	preallocate(f, size)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	psize := s.cfg.PartSize
	nparts := int((size + psize - 1) / psize)
	workers := min(s.cfg.Workers, nparts)
	window := min(workers+2, nparts) // slack so workers need not wait for the hash to catch up
	free := make(chan []byte, window)
	for range window {
		free <- s.bufs.get(int(psize))
	}
	defer func() {
		// Buffers still out belong to goroutines that have exited (wg.Wait
		// below runs first); those in free go back to the pool.
		for range len(free) {
			s.bufs.put(<-free)
		}
	}()
	release := func(p *part) {
		if p.refs.Add(-1) == 0 {
			free <- p.buf[:cap(p.buf)]
		}
	}
	started := make([]chan *part, nparts) // the hasher takes parts in order from these
	for i := range started {
		started[i] = make(chan *part, 1)
	}
	jobs := make(chan *part)

	var wg sync.WaitGroup
	// Producer: hands out parts in order, each with a free buffer. Buffers
	// come back only once hashed, so the parts in flight are always the
	// lowest not yet hashed: the hasher never waits on a part that cannot
	// start.
	wg.Go(func() {
		defer close(jobs)
		for i := range nparts {
			var buf []byte
			select {
			case buf = <-free:
			case <-ctx.Done():
				return
			}
			off := int64(i) * psize
			p := &part{index: i, off: off, buf: buf[:min(psize, size-off)], notify: make(chan struct{}, 1)}
			p.refs.Store(2)
			started[i] <- p
			select {
			case jobs <- p:
			case <-ctx.Done():
				return
			}
		}
	})
	for range workers {
		wg.Go(func() {
			for p := range jobs {
				err := s.getRange(ctx, key, info.ETag, p, f)
				release(p)
				if err != nil {
					cancel(err)
					return
				}
			}
		})
	}

	h := sha256.New()
	var hashed int64
	herr := func() error {
		for i := range nparts {
			var p *part
			select {
			case p = <-started[i]:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
			for done := 0; done < len(p.buf); {
				if filled := int(p.filled.Load()); filled > done {
					h.Write(p.buf[done:filled])
					hashed += int64(filled - done)
					done = filled
					continue
				}
				select {
				case <-p.notify:
				case <-ctx.Done():
					return context.Cause(ctx)
				}
			}
			release(p)
		}
		return nil
	}()
	cancel(herr)
	wg.Wait()
	if herr != nil {
		// The cause: a worker's error, or the caller's context error.
		return hashed, "", herr
	}
	return hashed, hex.EncodeToString(h.Sum(nil)), nil
}

// getRange fills p.buf from the object, writing each step to f at its
// offset. A body that breaks off is resumed from where it stopped (the
// request itself is retried by minio-go); an answer such as "precondition
// failed" (the object changed since the stat) is final.
func (s *Store) getRange(ctx context.Context, key, etag string, p *part, f *os.File) error {
	var last error
	for attempt := range 3 {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond): // backoff between attempts
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		filled := p.filled.Load()
		first, end := p.off+filled, p.off+int64(len(p.buf))-1
		opts := minio.GetObjectOptions{}
		if err := opts.SetRange(first, end); err != nil {
			return err
		}
		if etag != "" {
			if err := opts.SetMatchETag(etag); err != nil {
				return err
			}
		}
		rc, _, _, err := s.core.GetObject(ctx, s.cfg.Bucket, key, opts)
		if err != nil {
			err = s.wrap(err, "get %s bytes %d-%d", key, first, end)
			if !errors.Is(err, ErrUnreachable) {
				return err
			}
			last = err
			continue
		}
		err = s.readPart(rc, p, f)
		rc.Close()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if errors.Is(err, errWrite) {
			return err
		}
		last = s.wrap(err, "get %s bytes %d-%d", key, first, end)
	}
	return last
}

var errWrite = errors.New("write")

// readPart reads the rest of p from rc step by step.
func (s *Store) readPart(rc io.Reader, p *part, f *os.File) error {
	filled := int(p.filled.Load())
	for filled < len(p.buf) {
		step := p.buf[filled:min(filled+partStep, len(p.buf))]
		n, err := io.ReadFull(rc, step)
		s.bytes.Add(int64(n))
		if n > 0 {
			if _, werr := f.WriteAt(step[:n], p.off+int64(filled)); werr != nil {
				return fmt.Errorf("%w: %w", errWrite, werr)
			}
			filled += n
			p.filled.Store(int64(filled))
			select {
			case p.notify <- struct{}{}:
			default: // the hasher has a wake-up pending already
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// bufPool keeps download buffers between downloads: allocating (and
// zeroing, and faulting in) tens of megabytes per file costs more than the
// hash of them.
type bufPool struct {
	mu    sync.Mutex
	pools map[int]*sync.Pool
}

func (b *bufPool) pool(size int) *sync.Pool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pools == nil {
		b.pools = make(map[int]*sync.Pool)
	}
	p, ok := b.pools[size]
	if !ok {
		p = &sync.Pool{New: func() any { buf := make([]byte, size); return &buf }}
		b.pools[size] = p
	}
	return p
}

func (b *bufPool) get(size int) []byte { return *(b.pool(size).Get().(*[]byte)) }

func (b *bufPool) put(buf []byte) {
	buf = buf[:cap(buf)]
	b.pool(len(buf)).Put(&buf)
}

// loadFailed makes err wrap api.ErrLoadFailed. If err already wraps another
// sentinel of the closed set (not_found: the object is missing), it is
// flattened to text so that api.CodeOf stays unambiguous.
func loadFailed(err error) error {
	if err == nil || errors.Is(err, api.ErrLoadFailed) {
		return err
	}
	if api.CodeOf(err) != api.ErrorCode_ERROR_CODE_INTERNAL {
		return fmt.Errorf("%w: %s", api.ErrLoadFailed, err.Error())
	}
	return fmt.Errorf("%w: %w", api.ErrLoadFailed, err)
}
