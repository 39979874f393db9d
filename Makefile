# llmq — two commands set a fresh machine up: `make run` and `make test`.
GO       ?= go
BIN      := bin/llmq
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
# Packages with tests; the full suite runs under the race detector.
PKGS     := ./...

.PHONY: build run test test-short lint fmt bench bench-gateway clean node-deps fuzz-smoke

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/llmq

## run: embedded NATS + dispatcher + simulated tiers (no keys, no GPU)
run: build
	./$(BIN) up

# JavaScript clients the test suite runs (a producer written from
# docs/protocol.md, the official openai package against the gateway).
NODE_DIRS := $(wildcard docs/examples gateway/testdata/openai-client)

## test: formatting, vet, every test under -race, a short fuzz of each untrusted-message decoder
test: node-deps
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path '*/node_modules/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 30m $(PKGS)
	$(MAKE) fuzz-smoke

node-deps:
	@for d in $(NODE_DIRS); do \
	  if [ -f $$d/package-lock.json ] && [ ! -d $$d/node_modules ]; then \
	    echo "npm ci --prefix $$d"; npm ci --prefix $$d --no-audit --no-fund || exit 1; fi; done

# Every decoder of untrusted messages has a fuzz target; each runs briefly.
# Budgets are execution counts, not durations: with a duration, Go up to
# 1.26 can fail a target with a bare "context deadline exceeded" when the
# time runs out while a worker is mid-input on a busy machine (no crasher;
# go.dev/issue/75804, fixed in Go 1.27). Each takes a few seconds here.
fuzz-smoke:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRequest$$' -fuzztime 100000x ./schema
	$(GO) test -run '^$$' -fuzz '^FuzzMessageUnmarshalJSON$$' -fuzztime 200000x ./schema
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeHeartbeat$$' -fuzztime 100000x ./broker
	$(GO) test -run '^$$' -fuzz '^FuzzParseBounce$$' -fuzztime 30000x ./dispatcher

test-short:
	$(GO) test -count=1 -short $(PKGS)

## bench: measure llmq on this machine and write BENCHMARKS.md (about 7 minutes, loopback only)
bench: build
	$(GO) build -o bin/llmq-bench ./bench/cmd/llmq-bench
	./bin/llmq-bench --llmq $(BIN) --out BENCHMARKS.md --notes bench/NOTES.md

## bench-gateway: only the gateway section (issue 14, about 2 minutes), merged into BENCHMARKS.md
bench-gateway: build
	$(GO) build -o bin/llmq-bench ./bench/cmd/llmq-bench
	./bin/llmq-bench --llmq $(BIN) --sections gateway --profile-duration 10s --out BENCHMARKS.md --json bin/bench-gateway.json --notes bench/NOTES.md --update

lint:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)

fmt:
	gofmt -w .

clean:
	rm -rf bin
