# Everything runs from here; `make test` is what CI runs.
GO      ?= go
BIN     := bin/signalbox
# The service and library packages run under the race detector too.
RACE_PKGS := ./protocol/... ./auth/... ./internal/... ./connection/... ./management/... ./functions/... ./client/...

.PHONY: all build test test-go test-race test-e2e vet lint fmt-check deps bench soak clean

all: build

# -buildvcs=true: `signalbox version` reads the git revision from the build
# information (a git worktree has none: the toolchain stamps only real checkouts).
build:
	$(GO) build -buildvcs=true -o $(BIN) ./cmd/signalbox

deps:
	bash scripts/ensure-deps.sh

vet:
	$(GO) vet ./...

# Pinned so that CI and every developer see the same findings.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint:
	$(GO) run $(STATICCHECK) ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test-go:
	$(GO) test -count=1 ./...

test-race:
	$(GO) test -count=1 -race $(RACE_PKGS)

test-e2e: build deps
	cd test/e2e && SIGNALBOX_BIN=$(CURDIR)/$(BIN) npm test

test: fmt-check vet lint test-go test-race test-e2e

# The short performance table (every row of docs/performance.md with its goal, about 3
# minutes), after the micro-benchmarks of the codecs and the fan-out loop.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 200ms ./protocol/... ./internal/...
	$(BIN) bench --scenario all --short

# The soak (issue 7, T9): 2,000 connections of every transport for 3 minutes of steady
# traffic and churn, then the server's goroutines, files and heap back to baseline
# (6 to 10 minutes; .ci/run runs it after make test). SOAK and SOAK_CONNS override;
# SOAK_TIMEOUT bounds the whole test (connect, traffic, the wait for the baseline), so raise
# it with SOAK: make soak SOAK=30m SOAK_CONNS=10000 SOAK_TIMEOUT=50m.
SOAK         ?= 3m
SOAK_CONNS   ?= 2000
SOAK_TIMEOUT ?= 20m
soak: build
	SIGNALBOX_BIN=$(CURDIR)/$(BIN) SIGNALBOX_SOAK=$(SOAK) SIGNALBOX_SOAK_CONNS=$(SOAK_CONNS) \
		$(GO) test -count=1 -run TestSoak -v -timeout $(SOAK_TIMEOUT) ./internal/soak

clean:
	rm -rf bin
