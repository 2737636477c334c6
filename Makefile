# pipaauth: the commands the README and CI use.
GO       ?= go
FUZZTIME ?= 30s
BENCHCOUNT ?= 6

.PHONY: all test vet fmt-check bench fuzz fuzz-ci lint load demo

all: test

## test: vet, then every test under the race detector (CI runs this)
test: vet
	$(GO) test -race -count=1 ./...

vet: fmt-check
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## bench: benchmarks with allocations, BENCHCOUNT runs each (compare with benchstat)
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -count=$(BENCHCOUNT) ./...

## fuzz: each fuzz target for FUZZTIME
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzValid$$' -fuzztime=$(FUZZTIME) ./internal/returnto
	$(GO) test -run='^$$' -fuzz='^FuzzParseQuery$$' -fuzztime=$(FUZZTIME) ./callback
	$(GO) test -run='^$$' -fuzz='^FuzzCodec$$' -fuzztime=$(FUZZTIME) ./session

## fuzz-ci: a short seeded fuzz run
fuzz-ci:
	$(MAKE) fuzz FUZZTIME=10s

## lint: gofmt, go vet, staticcheck and govulncheck (fetched through the Go module proxy)
lint: vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
	$(GO) run golang.org/x/vuln/cmd/govulncheck@v1.9.0 ./...

## load: wrk against a bare and a guarded route, alternated (needs wrk: apt-get install wrk)
load:
	$(GO) run ./cmd/pipaload

## demo: the demo app on an embedded PiPA
demo:
	$(GO) run ./cmd/pipademo
