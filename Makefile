# daguq: durable message queues for Dagu, in SQLite or PostgreSQL.
GO        ?= go
BIN       := bin/daguq
# staticcheck is pinned in tools/go.mod and built from there into bin/.
STATICCHECK := bin/staticcheck
export CGO_ENABLED := 1

.PHONY: help build test test-postgres-heavy test-integration soak bench bench-peers demo fmt lint clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'

build: ## build bin/daguq
	$(GO) build -o $(BIN) ./cmd/daguq

test: lint ## lint, then every test with the race detector (Dagu tests skip without DAGU_BIN)
	$(GO) test -race -count=1 ./...
	for f in FuzzParseQueueConfig FuzzEnqueueJSONLines; do $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 5s ./executor || exit 1; done
	$(GO) test -run '^$$' -fuzz '^FuzzString$$' -fuzztime 5s ./internal/expand

test-postgres-heavy: ## the PostgreSQL SKIP LOCKED proof (64 claimers, 4 processes) with 40,000 messages
	DAGUQ_PG_HEAVY=1 $(GO) test -race -count=1 -run '^TestMultiProcessSkipLockedClaims$$' -v ./queuestore/postgres/

.PHONY: test-postgres-faults
test-postgres-faults: ## PostgreSQL restarted mid-drain (down 5 s): consumers reconnect, nothing lost or doubled
	DAGUQ_PG_FAULTS=1 $(GO) test -race -count=1 -run '^TestPostgresRestartMidDrain$$' -v ./internal/cli/

.PHONY: test-postgres-latency test-postgres-bloat
test-postgres-latency: ## enqueue to handler start of a watching consumer on PostgreSQL, 200 messages: p50 < 50 ms
	DAGUQ_PG_LATENCY=1 $(GO) test -count=1 -run '^TestWatchWakeupLatencyPostgres$$' -v ./executor/

# BLOAT_N messages per cycle, BLOAT_HOLD of vacuum held back: the issue's
# figures by default; docs/postgres.md has the figures of a shorter run.
BLOAT_N    ?= 1000000
BLOAT_HOLD ?= 10m
test-postgres-bloat: ## the PostgreSQL bloat proofs: 3 cycles of BLOAT_N messages, vacuum held back BLOAT_HOLD (long)
	DAGUQ_PG_BLOAT=1 DAGUQ_PG_BLOAT_N=$(BLOAT_N) DAGUQ_PG_BLOAT_HOLD=$(BLOAT_HOLD) $(GO) test -timeout 3h -count=1 -run '^TestBloat' -v ./queuestore/postgres/

test-integration: build ## the integration suite, with a real Dagu when DAGU_BIN is set
	$(GO) test -race -count=1 -tags integration ./integration/...

SOAK_DURATION ?= 2m
soak: ## fault-injection soak: SOAK_DURATION (2m) of kill -9, SIGSTOP, SIGTERM, write locks, a full disk; then the invariants
	SOAK_DURATION=$(SOAK_DURATION) $(GO) test -race -count=1 -timeout 0 -run '^TestSoak' -v ./internal/soak

bench: ## store benchmarks next to a naive single-table baseline, in messages/s
	$(GO) test -run '^$$' -bench . -benchtime 2s -count 1 ./queuestore/

bench-peers: ## side-by-side benchmarks: SQLite (goqite, River, raw floor, shell glue), then PostgreSQL (River, raw floor) when installed
	cd bench && $(GO) run . -out ../docs/performance.md -out-postgres ../docs/postgres.md

demo: build ## run the main job on the default SQLite file: enqueue, drain in batches, dead letters
	./dags/demo.sh

fmt: ## gofmt the tree
	gofmt -w $$(git ls-files '*.go')

# lint covers the root module (with and without the integration tag) and the
# bench/ module. plugin/ is left out: it imports Dagu, which is not on the Go
# module proxy, so it does not build here.
lint: $(STATICCHECK) ## go vet, gofmt check and staticcheck
	$(GO) vet ./...
	$(GO) vet -tags integration ./integration/...
	cd bench && $(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags integration ./integration/...
	cd bench && ../$(STATICCHECK) ./...

# Always handed to go build, which relinks only when tools/go.mod or the Go
# toolchain changed, so a Go upgrade never leaves a stale staticcheck.
.PHONY: $(STATICCHECK)
$(STATICCHECK):
	cd tools && $(GO) build -o ../$(STATICCHECK) honnef.co/go/tools/cmd/staticcheck

clean: ## remove build output
	rm -rf bin
