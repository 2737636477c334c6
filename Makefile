# pipaauth: the commands the README and CI use.
#
# The repository holds several Go modules: the library at the root, and
# e2e/ (the demo, load and soak tools, the browser, fleet, Redis and
# framework tests) with the dependencies the library must not pass on to
# its importers, and redisstore/. test, vet, lint and bench run in every
# directory that holds a go.mod (outside testdata), so a module added later
# is covered as is. go.work ties them together, so each module builds
# against the others as they are in the tree (redisstore/go.mod pins the
# root module at a pseudo-version, for users' builds; GOWORK=off builds it
# as they do).
GO         ?= go
FUZZTIME   ?= 30s
BENCHCOUNT ?= 6
E2E        := e2e
MODULES    := $(sort $(patsubst %/go.mod,%,$(shell find . -name go.mod -not -path '*/testdata/*' -not -path './.git/*')))
# A command run in each module in turn; every module runs even when one
# fails, and the failures are listed at the end.
each = failed=; for m in $(MODULES); do echo "== $$m: $(1)"; (cd $$m && $(1)) || failed="$$failed $$m"; done; \
	if [ -n "$$failed" ]; then echo "FAILED in:$$failed"; exit 1; fi

.PHONY: all test vet fmt-check lean bench fuzz fuzz-ci lint vulncheck load demo soak load-redis redis-install redis-start redis-stop modules

all: test

## test: vet, the lean check, then every test of every module under the
## race detector (CI runs this)
test: vet lean
	@$(call each,$(GO) test -race -count=1 ./...)

vet: fmt-check
	@$(call each,$(GO) vet ./...)

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Modules an importer of the library must never inherit.
NOT_LEAN := chromedp go-chi/chi gorilla/mux redistore redigo rueidis gin-gonic labstack/echo prometheus

## lean: a throwaway module that imports only the root package lists none
## of NOT_LEAN in go list -m all (the test, demo and tool dependencies stay
## in the other modules)
lean:
	@dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && root=$$(pwd) && \
	printf 'module example.com/lean\n\ngo 1.26.0\n\nrequire github.com/pipaauth/pipaauth v0.0.0\n\nreplace github.com/pipaauth/pipaauth => %s\n' "$$root" >"$$dir/go.mod" && \
	printf 'package main\n\nimport _ "github.com/pipaauth/pipaauth"\n\nfunc main() {}\n' >"$$dir/main.go" && \
	cd "$$dir" && $(GO) mod tidy && all=$$($(GO) list -m all) && \
	for m in $(NOT_LEAN); do if echo "$$all" | grep -q "$$m"; then echo "lean: an importer of pipaauth inherits $$m:"; echo "$$all"; exit 1; fi; done; \
	echo "lean: an importer of pipaauth inherits $$(echo "$$all" | wc -l | tr -d ' ') modules, none of: $(NOT_LEAN)"

## modules: the modules that test, vet, lint and bench cover
modules:
	@echo $(MODULES)

## bench: benchmarks with allocations, BENCHCOUNT runs each, in every module (compare with benchstat)
bench:
	@$(call each,$(GO) test -run='^$$' -bench=. -benchmem -count=$(BENCHCOUNT) ./...)

## fuzz: each fuzz target for FUZZTIME
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzValid$$' -fuzztime=$(FUZZTIME) ./internal/returnto
	$(GO) test -run='^$$' -fuzz='^FuzzParseQuery$$' -fuzztime=$(FUZZTIME) ./callback
	$(GO) test -run='^$$' -fuzz='^FuzzCodec$$' -fuzztime=$(FUZZTIME) ./session
	$(GO) test -run='^$$' -fuzz='^FuzzCookieValue$$' -fuzztime=$(FUZZTIME) ./session
	$(GO) test -run='^$$' -fuzz='^FuzzFindClaim$$' -fuzztime=$(FUZZTIME) .

## fuzz-ci: a short seeded fuzz run, budgeted in executions (about 10 s
## each here): a duration budget races Go 1.26's fuzz coordinator at its
## deadline (go.dev/issue/75804, fixed in Go 1.27) and fails with "context
## deadline exceeded" without any failing input.
fuzz-ci:
	$(MAKE) fuzz FUZZTIME=200000x

## lint: gofmt, go vet and staticcheck in every module; works offline once
## staticcheck is in the module cache (it comes through the Go module proxy)
lint: vet
	@$(call each,$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...)

VULNDB ?= https://vuln.go.dev

## vulncheck: govulncheck in every module. It needs its vulnerability
## database host (VULNDB, default https://vuln.go.dev), not just the module
## proxy: when that host cannot be reached it says so and skips.
vulncheck:
	@if ! curl -fsS -o /dev/null --max-time 10 $(VULNDB)/index/db.json.gz 2>/dev/null; then \
		echo "vulncheck: skipped: $(VULNDB) cannot be reached, and govulncheck needs its database (set VULNDB to a mirror)"; exit 0; fi; \
	$(call each,$(GO) run golang.org/x/vuln/cmd/govulncheck@v1.9.0 -db $(VULNDB) ./...)

## load: wrk against a bare and a guarded route, alternated (needs wrk: apt-get install wrk)
load:
	cd $(E2E) && $(GO) run ./cmd/pipaload

## load-redis: the same with the guard on cookie sessions, redistore, redisstore
## and redisstore on a local 3-master Redis Cluster
## alternated in one run (needs wrk and redis-server)
load-redis:
	cd $(E2E) && $(GO) run ./cmd/pipaload -store cookie,redistore,redisstore,redisstore-cluster

## demo: the demo app on an embedded PiPA; Ctrl+C stops it
demo:
	@cd $(E2E) && $(GO) build -o ../bin/pipademo ./cmd/pipademo
	@exec ./bin/pipademo

## soak: 10,000 logins and 100,000 guarded requests on two instances behind a
## round-robin proxy, sessions in a private Redis (needs redis-server; scale
## down with SOAKFLAGS='-logins 1000 -requests 10000')
soak:
	cd $(E2E) && $(GO) run ./cmd/pipasoak $(SOAKFLAGS)

REDIS_PORT ?= 6399

## redis-install: redis-server from Debian's packages, without starting a service
redis-install:
	@command -v redis-server >/dev/null 2>&1 || { apt-get update -qq && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null || true; }
	@command -v redis-server >/dev/null && command -v redis-cli >/dev/null

## redis-start: a throwaway Redis on 127.0.0.1:REDIS_PORT (no persistence) for
## the fleet tests (e2e/fleet): PIPAAUTH_REDIS_ADDR=127.0.0.1:6399 make test
redis-start:
	redis-server --bind 127.0.0.1 --port $(REDIS_PORT) --save "" --appendonly no --daemonize yes --logfile /tmp/pipaauth-redis-$(REDIS_PORT).log
	@for i in $$(seq 50); do [ "$$(redis-cli -p $(REDIS_PORT) ping 2>/dev/null)" = PONG ] && exit 0; sleep 0.1; done; echo "redis-server does not answer on port $(REDIS_PORT)"; exit 1

## redis-stop: stop it, dropping its data
redis-stop:
	redis-cli -p $(REDIS_PORT) shutdown nosave
