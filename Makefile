# Manta: the one entry point. `make` lists the targets.
SHELL := /bin/bash
GO    ?= go
BIN   := bin
export PATH := $(CURDIR)/.bin:$(PATH)

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: setup
setup: ## install Redis, etcd, protoc, Python+sklearn (apt) and MinIO, protoc-gen-go (.bin); idempotent
	@./scripts/setup.sh

.PHONY: build
build: ## build the manta command into bin/ and every example
	$(GO) build -o $(BIN)/manta ./cmd/manta
	$(GO) build ./examples/...

# `make test` = setup + vet + race tests (with real Redis, MinIO, etcd, Python)
# + every fuzz target briefly (FUZZTIME, 5s each here) + the chaos soak's short
# form (SOAK_DURATION, 60s here).
# Races: protoactor-go and grpc have data races of their own (grpclog, the
# member list, disthash, receive timeouts). internal/racecheck runs
# `go test -race -json` and fails on any race report whose access stack's
# innermost non-standard-library frame is Manta code; a test that failed only
# through races inside libraries is re-run without -race and must pass.
.PHONY: test
test: setup ## setup, go vet, go test -race ./... (real servers; library-only races told apart), fuzz 5s each, soak 60s
	$(GO) vet ./...
	$(GO) run ./internal/racecheck -count=1 -timeout 30m ./...
	@FUZZTIME=$${TEST_FUZZTIME:-5s} $(MAKE) --no-print-directory fuzz
	@SOAK_DURATION=$${TEST_SOAK_DURATION:-60s} $(MAKE) --no-print-directory soak

.PHONY: demo
demo: build ## build and run the demo: 1,000 linear models on the embedded member, with evictions
	./$(BIN)/manta demo

.PHONY: bench
bench: build ## benchmarks: SDK overhead vs a direct call, and the Go benchmarks
	./$(BIN)/manta bench sdk
	$(GO) test -run '^$$' -bench . -benchtime 1s ./...

.PHONY: check
check: ## go vet and staticcheck
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@2025.1.1 ./...

.PHONY: soak
soak: setup ## chaos soak: 3 members, Redis, MinIO, Python, faults injected (SOAK_DURATION, default 5m; SOAK_SEED)
	MANTA_SOAK=1 SOAK_DURATION=$${SOAK_DURATION:-5m} $(GO) test -count=1 -run '^TestSoak$$' -v -timeout 60m ./internal/soak

# The fuzz targets are found in the sources (no test binary is built to list
# them); each runs FUZZTIME. A crash fails the target and leaves its input in
# the package's testdata/fuzz.
.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (default 60s)
	@set -e; for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$dir/*_test.go | sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "fuzz $$dir $$f ($${FUZZTIME:-60s})"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-60s} $$dir; \
	  done; \
	done

.PHONY: proto
proto: ## regenerate api/*.pb.go with Debian's protoc and the pinned protoc-gen-go
	@./scripts/setup.sh
	protoc --go_out=. --go_opt=module=github.com/manta-ml/manta api/*.proto

.PHONY: clean
clean: ## remove build output and the demo's files
	rm -rf $(BIN) .demo
