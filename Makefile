# dueflow: see README.md. `make demo` runs the whole pipeline locally,
# `make test` runs the tests.

GO        ?= go
BIN       := $(CURDIR)/bin
RIE       := $(BIN)/aws-lambda-rie
MAILPIT   := $(BIN)/mailpit
RIE_VER   := v0.0.0-20261030222936-bef5c4ba774d
MAILPIT_VER := v1.33.1

export DUEFLOW_BIN := $(BIN)

# Knobs of the benchmarks (empty: the benchmark's default; see bench-sql, bench-stack, bench-river)
BENCH_ENV = BENCH_N=$(N) BENCH_LATENCY=$(LATENCY) BENCH_INSTANCES=$(INSTANCES) BENCH_CONCURRENCY=$(CONCURRENCY) \
	BENCH_BATCH=$(BATCH) BENCH_CASE=$(CASE) BENCH_PROFILE=$(PROFILE)

.PHONY: all test vet tools demo invoke build deploy clean fuzz bench-engine bench-sql bench-tick bench-stack bench-river

all: vet test

## tools: the Lambda Runtime Interface Emulator and Mailpit, into ./bin (git-ignored)
tools: $(RIE) $(MAILPIT)

$(RIE):
	GOBIN=$(BIN) $(GO) install github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$(RIE_VER)

$(MAILPIT):
	GOBIN=$(BIN) $(GO) install github.com/axllent/mailpit@$(MAILPIT_VER)

## vet: gofmt and go vet
vet:
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd bench/river && $(GO) vet ./...   # its own module: it must keep building as the product changes

## test: every test, against a private Postgres 15 + pg_cron the tests start themselves
test: $(RIE) vet
	$(GO) test -count=1 -timeout 40m ./...

## demo: the whole pipeline locally with demo data until Ctrl-C (ONCE=1: one cycle, then exit); docs/local-stack.md
# (built, then run: `go run` would exit 1 after Ctrl-C although the demo stopped cleanly)
demo: tools
	$(GO) build -o $(BIN)/dueflow ./cmd/dueflow
	$(BIN)/dueflow demo $(if $(ONCE),--once)

## invoke: one function once under the Lambda RIE, env from the local stack: make invoke FN=send-reminder [EVENT=events/x.json]
invoke: $(RIE)
	@test -n "$(FN)" || { echo "make invoke: FN is required: make invoke FN=<function> [EVENT=events/<file>.json]; functions: $(LAMBDA_ACTIONS)" >&2; exit 2; }
	$(GO) run ./cmd/dueflow invoke --fn $(FN) $(if $(EVENT),--event $(EVENT))

## fuzz: fuzz the webhook verifier + request decoder (FUZZTIME=30s)
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./shared/webhook/ -run '^$$' -fuzz FuzzVerifyAndDecode -fuzztime $(FUZZTIME)

## bench-sql: invoice check (first, steady state, day start) and claim+report throughput on generated data, generated
##   once into a template database (not timed) and cloned per benchmark; knobs: ORGS=1000 organisations,
##   INVOICES=1000000 invoices (10 clients per organisation), BENCH=. (a -bench regexp), BENCHTIME=1s
bench-sql:
	BENCH_ORGS=$(ORGS) BENCH_INVOICES=$(INVOICES) $(GO) test ./internal/sqltest/ -run '^$$' -bench '$(or $(BENCH),.)' $(if $(BENCHTIME),-benchtime $(BENCHTIME)) -timeout 60m

## bench-tick: the per-minute tick (every check pg_cron runs each minute + process_pending_automations, nothing new;
##   wall and server CPU ms per step) on generated data, made once into a template database (not timed); knobs:
##   ORGS=1000 organisations (10 clients, 100 invoices, 100 jobs and five workflows each), BENCHTIME=10x
bench-tick:
	BENCH_ORGS=$(ORGS) $(GO) test ./internal/sqltest/ -run '^$$' -bench '^BenchmarkTick$$' -benchtime $(or $(BENCHTIME),10x) -timeout 60m

## bench-stack: N executions through the whole local stack vs a naive per-execution dispatcher (e2e/BenchmarkDrain); knobs:
##   N=10000 executions per drain; LATENCY=0,50ms provider latency per message, one round each;
##   INSTANCES=4 function instances (RIE); CONCURRENCY=16 DUEFLOW_CONCURRENCY and naive workers;
##   BATCH=100 ids per function call (1-500); CASE=pipeline|naive runs one case alone;
##   PROFILE=top|all: per dueflow drain, pg_stat_statements per RPC (all: and the statements inside) and
##   Postgres CPU per execution by application (bench-river too)
bench-stack: $(RIE)
	$(BENCH_ENV) $(GO) test ./e2e/ -run '^$$' -bench BenchmarkDrain -benchtime 1x -timeout 60m

## bench-river: River (v0.51, riverpgxv5) vs dueflow draining the same N reminder emails into the same SMTP sink, rounds
##   alternated, rates and ratio per round and overall (bench/river, its own Go module); knobs: N=10000, ROUNDS=3,
##   LATENCY=0 (one value or a list), INSTANCES, CONCURRENCY, BATCH as bench-stack, CASE=river|dueflow one side alone;
##   River's: RIVER_WORKERS (default 50, 200 with a provider latency), RIVER_COOLDOWN=1ms (FetchCooldown),
##   RIVER_POLL=50ms (FetchPollInterval)
bench-river: $(RIE)
	cd bench/river && $(BENCH_ENV) BENCH_ROUNDS=$(ROUNDS) RIVER_WORKERS=$(RIVER_WORKERS) RIVER_COOLDOWN=$(RIVER_COOLDOWN) \
		RIVER_POLL=$(RIVER_POLL) $(GO) test . -run '^$$' -bench BenchmarkRiverVsDueflow -benchtime 1x -timeout 120m

## bench-engine: executions/s through claim, render, send (SMTP) and report; cold start; RPC adapter
bench-engine:
	$(GO) test ./shared/engine/ -run '^$$' -bench Pipeline -benchtime 3000x
	$(GO) test ./shared/function/ -run '^$$' -bench 'Init|ColdStart' -benchtime 20x
	$(GO) test ./shared/supabase/ -run '^$$' -bench . -benchmem

clean:
	rm -rf .build .aws-sam

# --- deploy: Lambda builds (linux/arm64, static, stripped) and SAM ---------
# build-<LogicalId> is what `sam build` runs for each function (template.yaml,
# Metadata BuildMethod: makefile; SAM sets ARTIFACTS_DIR). The logical id is
# the function's name in CamelCase + Function: send-reminder ->
# build-SendReminderFunction. The three actions are one program,
# functions/action, each told its action by DUEFLOW_ACTION (template.yaml);
# every other directory of functions/ is one function of its name, so a new
# function needs no Makefile edit (internal/samtemplate checks the template).
LAMBDA_ACTIONS := send-reminder invoice-reminder run-workflow
LAMBDA_DIRS  := $(patsubst functions/%/,%,$(wildcard functions/*/))
LAMBDA_NAMES := $(if $(filter action,$(LAMBDA_DIRS)),$(LAMBDA_ACTIONS)) $(filter-out action,$(LAMBDA_DIRS))
LAMBDA_BUILD := GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -buildvcs=false -ldflags="-s -w"
lambda_id     = $(shell echo '$(1)' | awk -F- '{for (i = 1; i <= NF; i++) printf "%s%s", toupper(substr($$i, 1, 1)), substr($$i, 2)}')Function
lambda_pkg    = ./functions/$(if $(filter $(1),$(LAMBDA_ACTIONS)),action,$(1))

define lambda_target
.PHONY: build-$(call lambda_id,$(1))
build-$(call lambda_id,$(1)):
	@test -n "$$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: sam build sets it; use 'make build' to build locally" >&2; exit 1; }
	$$(LAMBDA_BUILD) -o $$(ARTIFACTS_DIR)/bootstrap $(call lambda_pkg,$(1))
endef
$(foreach d,$(LAMBDA_NAMES),$(eval $(call lambda_target,$(d))))

## build: every function for Lambda into .build/<name>/bootstrap (linux/arm64, static)
build:
	@test -n "$(strip $(LAMBDA_NAMES))" || { echo "no function directories under functions/" >&2; exit 1; }
	@$(foreach d,$(LAMBDA_NAMES),$(MAKE) --no-print-directory build-$(call lambda_id,$(d)) ARTIFACTS_DIR=$(CURDIR)/.build/$(d) &&) true

## deploy: sam build, then sam deploy (--guided the first time, which writes samconfig.toml)
# --build-in-source: run the build-<LogicalId> targets here rather than in a
# copy of the whole tree (CodeUri is ".", which holds .dueflow/ and bin/).
deploy:
	sam build --build-in-source
	@if [ -f samconfig.toml ]; then sam deploy; else sam deploy --guided; fi
