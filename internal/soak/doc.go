// Package soak holds Manta's chaos soak: a 3-member cluster (processes,
// etcd, mutual TLS between members), Redis with AOF and an ACL user, MinIO
// and Python workers under a steady request stream over 1,000+ models, while
// a seeded fault injector kills and restarts members (SIGKILL), kills Python
// workers, restarts Redis, pauses MinIO and pushes new model versions. The
// members read their Redis password and MinIO secret key from files, as from
// mounted secrets; no credential is on a command line.
//
// At the end it checks that every request id has a result (duplicates
// counted, none missing), that no model was served by two members at once
// for longer than a hand-over (from the members' activation logs, which
// record when an activation starts serving and when it stops; duplicate
// resolution overlaps for milliseconds by design, and is reported), that no
// member's model memory exceeded its budget by more than one model, that
// goroutines and open files of a member that was never killed did not grow
// without bound, and that no credential shows in a member's output, in
// `manta status` or on the HTTP endpoints, and prints one summary table.
//
// It runs only with MANTA_SOAK set (the Makefile's soak target, which
// `make test` calls with SOAK_DURATION=60s):
//
//	make soak                                   # 5 minutes
//	SOAK_DURATION=60s SOAK_SEED=2 make soak     # short, another schedule
//	MANTA_SOAK=1 SOAK_DURATION=60s go test -run TestSoak -v ./internal/soak
package soak
