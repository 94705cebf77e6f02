# quickmatch: `make run` starts the whole system locally, `make test` runs
# every test of every module with the race detector, plus the linters.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

# Every module of the workspace, read from go.work: the root module (pkg/,
# services/, load/), then dev and deploy.
MODULES  := $(shell go work edit -json | sed -n 's/.*"DiskPath": "\(.*\)".*/\1/p')
$(if $(MODULES),,$(error cannot read the module list from go.work))
# Every Go file git knows of (tracked or new), deleted ones left out.
GOFILES   = $(wildcard $(shell git ls-files -co --exclude-standard '*.go'))
SERVICES := frontend matcher allocator game
BIN      := $(CURDIR)/bin
# Fuzz budgets are execution counts ("Nx"), not durations: Go 1.26's fuzz
# coordinator can fail a duration run at its deadline on a loaded machine
# with no crasher (golang/go#75804, fixed in Go 1.27); a count has no
# deadline to race.
FUZZTIME ?= 20000x
# FuzzRoomLifecycle starts a game server against a fake sidecar for each
# input (about 0.4 s): its own, smaller budget.
LIFECYCLE_FUZZTIME ?= 50x

.PHONY: run build build-race test lint fmt fuzz bench tools kube vulncheck chaos perf clean ts

## run: build, then start NATS, the four services and two game servers; open http://127.0.0.1:3000
run: build
	$(BIN)/localstack

## build: the service binaries, the local stack and the operator CLI (quickmatch) into bin/
build:
	@for s in $(SERVICES); do go build -o $(BIN)/$$s ./services/$$s; done
	go build -o $(BIN)/localstack ./dev/localstack
	go build -o $(BIN)/quickmatch ./cmd/quickmatch

## build-race: the service binaries, the load tool and the operator CLI with the race detector, for the end-to-end tests
build-race:
	@for s in $(SERVICES); do go build -race -o $(BIN)/race/$$s ./services/$$s; done
	go build -race -o $(BIN)/race/load ./load
	go build -race -o $(BIN)/race/quickmatch ./cmd/quickmatch

## tools: the pinned nats CLI, nats-server (for the chaos harness's NATS cluster), govulncheck and staticcheck (tools/go.mod) into bin/
tools: $(BIN)/nats $(BIN)/nats-server $(BIN)/govulncheck $(BIN)/staticcheck
$(BIN)/govulncheck: tools/go.mod
	GOWORK=off go build -C tools -o $(BIN)/govulncheck golang.org/x/vuln/cmd/govulncheck
$(BIN)/nats-server: tools/go.mod
	GOWORK=off go build -C tools -o $(BIN)/nats-server github.com/nats-io/nats-server/v2
$(BIN)/nats: tools/go.mod
	GOWORK=off go build -C tools -o $(BIN)/nats github.com/nats-io/natscli/nats
$(BIN)/staticcheck: tools/go.mod
	GOWORK=off go build -C tools -o $(BIN)/staticcheck honnef.co/go/tools/cmd/staticcheck

## kube: the control plane of the Kubernetes tests (kube-apiserver, -controller-manager, -scheduler v1.36.3 and etcd v3.6.8 built from the module proxy, kwok) into bin/kube
kube:
	tools/kube/build.sh

## test: lint, the TypeScript client (ts), then every test of every module with -race (real NATS, real processes, real nats CLI, a real kube-apiserver)
test: lint ts build-race $(BIN)/nats $(BIN)/nats-server $(BIN)/govulncheck kube
	@for m in $(MODULES); do \
	  echo "== go test -race $$m"; \
	  (cd $$m && QUICKMATCH_NATS_CLI=$(BIN)/nats QUICKMATCH_NATS_SERVER=$(BIN)/nats-server QUICKMATCH_GOVULNCHECK=$(BIN)/govulncheck QUICKMATCH_BIN_DIR=$(BIN)/race KUBEBUILDER_ASSETS=$(BIN)/kube go test -race -count=1 -timeout 20m ./...); \
	done
	@$(MAKE) --no-print-directory fuzz

## ts: the TypeScript client (clients/ts): npm ci from its lock file; fails if its types differ from openapi.yaml's or the page's bundle from its sources (npm run check); its tests in Node and headless Chromium. Its Go tests against a real frontend (services/frontend/internal/api/client_ts_test.go) run with the root module's.
ts:
	cd clients/ts && npm ci --no-audit --no-fund && npm run check && npm test

## lint: gofmt, go vet, staticcheck, a GOWORK=off build of every module (what container builds do), one version of each dependency across modules, and no file over 400 lines or function over 80 (tools/sizes)
lint: $(BIN)/staticcheck
	@out=$$(gofmt -l $(GOFILES)); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do \
	  echo "== vet, staticcheck, GOWORK=off build: $$m"; \
	  (cd $$m && go vet ./... && $(BIN)/staticcheck ./... && GOWORK=off go build ./... ); \
	done
	tools/onedeps.sh $(MODULES)
	GOWORK=off go run -C tools ./sizes $(CURDIR)

## fuzz: a short run of every fuzz target (FUZZTIME executions each; make fuzz FUZZTIME=2000000x for longer)
fuzz:
	cd pkg/events && go test -run '^$$' -fuzz '^FuzzDecodeTicket$$' -fuzztime $(FUZZTIME) .
	cd pkg/events && go test -run '^$$' -fuzz '^FuzzParseTicket$$' -fuzztime $(FUZZTIME) .
	cd pkg/events && go test -run '^$$' -fuzz '^FuzzDecodeTicketAttributes$$' -fuzztime $(FUZZTIME) .
	cd pkg/rules && go test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) .
	cd pkg/events && go test -run '^$$' -fuzz '^FuzzDecodeQueueStats$$' -fuzztime $(FUZZTIME) .
	cd pkg/matchfn && go test -run '^$$' -fuzz '^FuzzDecodeRequest$$' -fuzztime $(FUZZTIME) .
	cd pkg/matchfn && go test -run '^$$' -fuzz '^FuzzDecodeReply$$' -fuzztime $(FUZZTIME) .
	cd examples/matchfunction && go test -run '^$$' -fuzz '^FuzzPropose$$' -fuzztime $(FUZZTIME) ./closest/
	cd pkg/jointoken && go test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME) .
	cd pkg/servicekit/identity && go test -run '^$$' -fuzz '^FuzzEdDSAAgreesWithTheStandardLibrary$$' -fuzztime $(FUZZTIME) .
	cd pkg/jointoken && go test -run '^$$' -fuzz '^FuzzSeatedGrant$$' -fuzztime $(FUZZTIME) .
	cd pkg/agones && go test -run '^$$' -fuzz '^FuzzGatewayAnswers$$' -fuzztime $(FUZZTIME) ./sdk/sdktest/
	cd services/frontend && go test -run '^$$' -fuzz '^FuzzRequest$$' -fuzztime $(FUZZTIME) ./internal/tickets/
	cd services/game && go test -run '^$$' -fuzz '^FuzzRoomMessages$$' -fuzztime $(FUZZTIME) ./internal/server/
	cd services/game && go test -run '^$$' -fuzz '^FuzzRoomLifecycle$$' -fuzztime $(LIFECYCLE_FUZZTIME) ./internal/server/
	cd services/allocator && go test -run '^$$' -fuzz '^FuzzServerOf$$' -fuzztime $(FUZZTIME) ./internal/kube/
	cd services/allocator && go test -run '^$$' -fuzz '^FuzzWebhook$$' -fuzztime $(FUZZTIME) ./internal/autoscale/

## vulncheck: govulncheck over every module against the Go vulnerability database (VULNDB=file:///... for a local copy)
vulncheck: $(BIN)/govulncheck
	tools/vulncheck.sh $(MODULES)

## chaos: the long chaos run (5 minutes of load with a fault every second, 80 % of them cuts of up to 8 s, about 11 of each kind; figures in BENCHMARKS.md)
chaos: build-race $(BIN)/nats-server
	go run ./dev/chaos/cmd/chaos -bin $(BIN)/race -nats-server $(BIN)/nats-server -duration 5m -rate 50 \
		-fault-every 1s -max-cut 8s -partition-share 0.8

## bench: the Go benchmarks of the hot paths (figures in BENCHMARKS.md)
bench:
	cd pkg/events && go test -run '^$$' -bench . -benchmem .
	cd services/matcher && go test -run '^$$' -bench 'Match1M' -benchtime 500000x -count 3 ./internal/pool/
	cd services/matcher && go test -run '^$$' -bench 'PoolMemory' -benchtime 1x ./internal/pool/
	cd services/game && go test -run '^$$' -bench 'RoomMemory' -benchtime 1x ./internal/server/

# perf's defaults, per leg (make perf RATE=2000 DURATION=60s): rate ×
# duration must be a multiple of 6 (an even count in each of 3 regions).
RATE      ?= 500
DURATION  ?= 30s
PERF_JSON ?= $(BIN)/perf.json

## perf: what a ticket costs, over HTTP then NATS, each leg on a fresh stack of production binaries: CPU seconds per 1,000 tickets of each process (from /proc), throughput, p50/p99, memory (RATE, DURATION per leg; JSON in PERF_JSON; method in BENCHMARKS.md)
perf: build
	go build -o $(BIN)/load ./load
	go run ./dev/perf/cmd/perf -bin-dir $(BIN) -rate $(RATE) -duration $(DURATION) -json $(PERF_JSON)

fmt:
	gofmt -w $(GOFILES)

clean:
	rm -rf $(BIN) .data
