# llmq — two commands set a fresh machine up: `make run` and `make test`.
GO       ?= go
BIN      := bin/llmq
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
# Packages with tests; the full suite runs under the race detector.
PKGS     := ./...

.PHONY: build run test test-short lint fmt bench clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/llmq

## run: embedded NATS + dispatcher + simulated tiers (no keys, no GPU)
run: build
	./$(BIN) up

## test: vet, formatting, then every test under -race
test:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

test-short:
	$(GO) test -count=1 -short $(PKGS)

lint:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)

fmt:
	gofmt -w .

clean:
	rm -rf bin
