// Package soak holds Manta's chaos soak: a 3-member cluster (processes,
// etcd), Redis with AOF, MinIO and Python workers under a steady request
// stream over 1,000+ models, while a seeded fault injector kills and
// restarts members (SIGKILL), kills Python workers, restarts Redis, pauses
// MinIO and pushes new model versions. At the end it checks that every
// request id has a result (duplicates counted, none missing), that no model
// was served by two members at once for longer than a hand-over (from the
// members' activation logs, which record when an activation starts serving
// and when it stops; duplicate resolution overlaps for milliseconds by
// design, and is reported), that no member's model memory
// exceeded its budget by more than one model, and that goroutines and open
// files of a member that was never killed did not grow without bound, and
// prints one summary table.
//
//	make soak                                   # 5 minutes
//	MANTA_SOAK=1 SOAK_DURATION=60s go test -run TestSoak -v ./internal/soak
package soak
