# dueflow: see README.md. `make demo` runs the whole pipeline locally,
# `make test` runs the tests.

GO        ?= go
BIN       := $(CURDIR)/bin
RIE       := $(BIN)/aws-lambda-rie
MAILPIT   := $(BIN)/mailpit
RIE_VER   := v0.0.0-20261030222936-bef5c4ba774d
MAILPIT_VER := v1.33.1
FUNCTIONS := $(notdir $(wildcard functions/*))

export DUEFLOW_BIN := $(BIN)

.PHONY: all test vet fmt bench tools demo invoke build deploy clean

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

## test: every test, against a private Postgres 15 + pg_cron the tests start themselves
test: $(RIE) vet
	$(GO) test -count=1 -timeout 40m ./...

## demo: the whole pipeline locally with demo data until Ctrl-C (ONCE=1: one cycle, then exit); README "Local stack"
demo: tools
	$(GO) run ./cmd/dueflow demo $(if $(ONCE),--once)

## invoke: one function once under the Lambda RIE, env from the local stack: make invoke FN=send-reminder [EVENT=events/x.json]
invoke: $(RIE)
	@test -n "$(FN)" || { echo "make invoke: FN is required: make invoke FN=<function> [EVENT=events/<file>.json]; functions: $(FUNCTIONS)" >&2; exit 2; }
	$(GO) run ./cmd/dueflow invoke --fn $(FN) $(if $(EVENT),--event $(EVENT))

clean:
	rm -rf .build .aws-sam
