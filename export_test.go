package manta

import "time"

// SetCandidateStatsTTL changes CandidateStatsTTL for a test and returns the
// function that restores it.
func SetCandidateStatsTTL(d time.Duration) (restore func()) {
	old := candidateTTL.Swap(int64(d))
	return func() { candidateTTL.Store(old) }
}
