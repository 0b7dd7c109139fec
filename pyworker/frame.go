package pyworker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
)

// Frames are a uint32 big-endian length, then that many bytes of one
// protobuf message (api.WorkerRequest to the worker, api.WorkerResponse
// back). docs/ARCHITECTURE.md §8.

// errFrameTooLarge is wrapped by readFrame for a length above the cap.
var errFrameTooLarge = errors.New("frame too large")

// frameChunk is how much of a frame is allocated before its bytes have
// arrived: a garbage length costs at most this much memory, however large
// it claims to be (up to the cap).
const frameChunk = 1 << 20

// readFrame reads one frame's message. buf is reused when large enough.
// io.EOF means a clean end between frames; a frame cut short is
// io.ErrUnexpectedEOF; a length above limit is errFrameTooLarge.
func readFrame(r io.Reader, buf []byte, limit int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("truncated frame header: %w", err)
		}
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	if n > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d (is something else writing to the worker's stdout?)", errFrameTooLarge, n, limit)
	}
	if n <= cap(buf) {
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, truncated(err, n)
		}
		return buf, nil
	}
	// Grow as the bytes arrive rather than trusting the length up front.
	buf = buf[:0]
	for len(buf) < n {
		step := min(n-len(buf), frameChunk)
		buf = slices.Grow(buf, step)
		m, err := io.ReadFull(r, buf[len(buf):len(buf)+step])
		buf = buf[:len(buf)+m]
		if err != nil {
			return nil, truncated(err, n)
		}
	}
	return buf, nil
}

func truncated(err error, n int) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("truncated frame of %d bytes: %w", n, err)
}

// bufPool recycles the batch-sized buffers of the request path (feature
// matrices, marshalled requests): at thousands of batches a second they are
// most of the garbage, and the collector's work shows in the latency.
var bufPool sync.Pool

// maxPooled keeps a huge batch's buffer from staying alive in the pool.
const maxPooled = 1 << 20

func getBuf(n int) []byte {
	if b, ok := bufPool.Get().(*[]byte); ok && cap(*b) >= n {
		return (*b)[:0]
	}
	return make([]byte, 0, max(n, 4<<10))
}

func putBuf(b []byte) {
	if cap(b) == 0 || cap(b) > maxPooled {
		return
	}
	b = b[:0]
	bufPool.Put(&b)
}

// appendFrame appends the frame header for a message of n bytes.
func appendFrameHeader(b []byte, n int) []byte {
	return binary.BigEndian.AppendUint32(b, uint32(n))
}
