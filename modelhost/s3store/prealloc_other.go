//go:build !linux

package s3store

import "os"

// preallocate is a no-op where fallocate is not available.
func preallocate(f *os.File, size int64) {}
