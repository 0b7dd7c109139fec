package modelhost

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/manta-ml/manta/api"
)

// VerifyError says an artifact file does not match its manifest entry: it
// is missing, unreadable, or its size or sha256 differ. It wraps
// api.ErrLoadFailed (and the I/O error, if any), and its message names the
// file: "verify model.joblib: sha256 mismatch: want 3a.. got 9f..".
type VerifyError struct {
	File    string // path as in the manifest
	Problem string // e.g. "sha256 mismatch: want .. got .."
	Err     error  // underlying I/O error, if any
}

func (e *VerifyError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("verify %s: %s: %v", e.File, e.Problem, e.Err)
	}
	return fmt.Sprintf("verify %s: %s", e.File, e.Problem)
}

// Unwrap returns api.ErrLoadFailed and the underlying error.
func (e *VerifyError) Unwrap() []error {
	if e.Err != nil {
		return []error{api.ErrLoadFailed, e.Err}
	}
	return []error{api.ErrLoadFailed}
}

// VerifyFile checks that the file at path has want's size and sha256,
// reading it once in a stream (the size is checked first, so a truncated
// file is refused without hashing it). A mismatch is a *VerifyError naming
// want.Path and wrapping api.ErrLoadFailed.
func VerifyFile(path string, want File) error {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return &VerifyError{File: want.Path, Problem: "file missing"}
		}
		return &VerifyError{File: want.Path, Problem: "open", Err: err}
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return &VerifyError{File: want.Path, Problem: "stat", Err: err}
	}
	if !st.Mode().IsRegular() {
		return &VerifyError{File: want.Path, Problem: "not a regular file"}
	}
	if st.Size() != want.Size {
		return &VerifyError{File: want.Path, Problem: fmt.Sprintf("size mismatch: want %d got %d", want.Size, st.Size())}
	}
	n, sum, err := hashReader(f)
	if err != nil {
		return &VerifyError{File: want.Path, Problem: "read", Err: err}
	}
	return checkDigest(want, n, sum)
}

// checkDigest compares a computed size and sha256 with a manifest entry.
func checkDigest(want File, n int64, sum string) error {
	if n != want.Size {
		return &VerifyError{File: want.Path, Problem: fmt.Sprintf("size mismatch: want %d got %d", want.Size, n)}
	}
	if sum != want.SHA256 {
		return &VerifyError{File: want.Path, Problem: fmt.Sprintf("sha256 mismatch: want %s got %s", want.SHA256, sum)}
	}
	return nil
}

// hashReader streams r through sha256 and returns the byte count and the
// lowercase hex digest.
func hashReader(r io.Reader) (int64, string, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return n, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// loadFailed makes err wrap api.ErrLoadFailed. If err already wraps another
// sentinel of the closed set, its chain is flattened to text so that
// api.CodeOf stays unambiguous; context errors are kept as they are.
func loadFailed(err error) error {
	if err == nil || errors.Is(err, api.ErrLoadFailed) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	switch api.CodeOf(err) {
	case api.ErrorCode_ERROR_CODE_INTERNAL, api.ErrorCode_ERROR_CODE_UNSPECIFIED:
		return &wrapped{sentinel: api.ErrLoadFailed, err: err}
	}
	return &wrapped{sentinel: api.ErrLoadFailed, msg: err.Error()}
}

// wrapped is an error that wraps a sentinel beside (optionally) its cause,
// without repeating the sentinel's text in the message.
type wrapped struct {
	sentinel error
	err      error
	msg      string
}

func (w *wrapped) Error() string {
	if w.err != nil {
		return w.err.Error()
	}
	return w.msg
}

func (w *wrapped) Unwrap() []error {
	if w.err != nil {
		return []error{w.sentinel, w.err}
	}
	return []error{w.sentinel}
}
