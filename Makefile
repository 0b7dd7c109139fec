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

# `make test` = setup + vet + race tests (with real Redis, MinIO, etcd, Python).
# Races: protoactor-go and grpc have data races of their own (grpclog, the
# member list, disthash, receive timeouts). internal/racecheck runs
# `go test -race -json` and fails on any race report whose access stack's
# innermost non-standard-library frame is Manta code; a test that failed only
# through races inside libraries is re-run without -race and must pass there.
.PHONY: test
test: setup ## setup, go vet, go test -race ./... (real servers; library-only races told apart)
	$(GO) vet ./...
	$(GO) run ./internal/racecheck -count=1 -timeout 30m ./...

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
soak: setup ## chaos soak: 3 members, Redis, MinIO, Python, faults injected (SOAK_DURATION, default 5m)
	MANTA_SOAK=1 SOAK_DURATION=$${SOAK_DURATION:-5m} $(GO) test -count=1 -run TestSoak -v -timeout 60m ./internal/soak

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (default 60s)
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-60s} $$pkg || exit 1; \
	  done; \
	done

.PHONY: proto
proto: ## regenerate api/*.pb.go with Debian's protoc and the pinned protoc-gen-go
	@./scripts/setup.sh
	protoc --go_out=. --go_opt=module=github.com/manta-ml/manta api/*.proto

.PHONY: clean
clean: ## remove build output and the demo's files
	rm -rf $(BIN) .demo
