# pipaauth: the commands the README and CI use.
GO       ?= go
FUZZTIME ?= 30s
BENCHCOUNT ?= 6

.PHONY: all test test-examples vet fmt-check bench fuzz fuzz-ci lint load demo soak load-redis redis-install redis-start redis-stop

all: test

## test: vet, then every test under the race detector (CI runs this)
test: vet
	$(GO) test -race -count=1 ./...

## test-examples: the examples' own modules (they fetch their dependencies, such as client_golang)
test-examples:
	cd examples/prometheus && $(GO) vet ./... && $(GO) test -race -count=1 ./...

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

## load-redis: the same with the guard on cookie sessions and on a private Redis,
## alternated in one run (needs wrk and redis-server)
load-redis:
	$(GO) run ./cmd/pipaload -store cookie,redis

## demo: the demo app on an embedded PiPA
demo:
	$(GO) run ./cmd/pipademo

## soak: 10,000 logins and 100,000 guarded requests on two instances behind a
## round-robin proxy, sessions in a private Redis (needs redis-server; scale
## down with SOAKFLAGS='-logins 1000 -requests 10000')
soak:
	$(GO) run ./cmd/pipasoak $(SOAKFLAGS)

REDIS_PORT ?= 6399

## redis-install: redis-server from Debian's packages, without starting a service
redis-install:
	@command -v redis-server >/dev/null 2>&1 || { apt-get update -qq && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null || true; }
	@command -v redis-server >/dev/null && command -v redis-cli >/dev/null

## redis-start: a throwaway Redis on 127.0.0.1:REDIS_PORT (no persistence) for
## the fleet tests: PIPAAUTH_REDIS_ADDR=127.0.0.1:6399 make test
redis-start:
	redis-server --bind 127.0.0.1 --port $(REDIS_PORT) --save "" --appendonly no --daemonize yes --logfile /tmp/pipaauth-redis-$(REDIS_PORT).log
	@for i in $$(seq 50); do [ "$$(redis-cli -p $(REDIS_PORT) ping 2>/dev/null)" = PONG ] && exit 0; sleep 0.1; done; echo "redis-server does not answer on port $(REDIS_PORT)"; exit 1

## redis-stop: stop it, dropping its data
redis-stop:
	redis-cli -p $(REDIS_PORT) shutdown nosave
