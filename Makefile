# Shoal: a proxyless service mesh for Go.
# `make help` lists the targets. Every target works from a fresh clone and
# installs what it needs (scripts/).

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
BIN := $(ROOT)/.cache/bin
export PATH := $(BIN):$(PATH)
export GOFLAGS := -buildvcs=false

# Library modules are released on their own (versions.yaml); the others are
# workspace-only consumers of them.
LIB_MODULES := triple sdk registry-istio router-mesh localmesh observability
# Released modules (versions.yaml) keep no replace: `go mod tidy`, which
# ignores go.work, resolves their Shoal requires from a module proxy packed
# from this tree (scripts/tidy-released.sh).
RELEASED := $(LIB_MODULES) cli
APP_MODULES := cli proto samples/go interop bench
MODULES := $(LIB_MODULES) $(APP_MODULES)
# Modules outside go.work, built with GOWORK=off: interop/dubbogo pins the old
# dependencies of dubbo-go and the legacy dubbogo/triple (its go.mod says why).
OUT_MODULES := interop/dubbogo
gowork = $(if $(filter $(1),$(OUT_MODULES)),GOWORK=off)

GO_TEST_FLAGS ?= -race -count=1
TEST_TIMEOUT ?= 40m
# A count, not a duration: Go 1.26's fuzz coordinator can fail a target with a
# bare "context deadline exceeded" when a duration-based -fuzztime ends while a
# worker is mid-input (golang/go#75804, fixed in Go 1.27). A count has no
# deadline to race. FUZZTIME=30s still works for a longer local run.
FUZZTIME ?= 10000x

##@ Quick start

.PHONY: demo
demo: ## Run the proxyless mesh demo: istiod, Go and Java services, a live traffic shift.
	@scripts/demo.sh

.PHONY: test
test: deps test-go fuzz ## Run every test: unit, integration and interop (installs what it needs).

##@ Tests

.PHONY: unit
unit: ## Fast tests of all modules with -race (-short: no control plane, containers or Java).
	@$(MAKE) $(addprefix unit/,$(MODULES) $(OUT_MODULES))

.PHONY: test-go
test-go: ## Every Go test of all modules with -race, including integration and interop.
	@$(MAKE) $(addprefix test/,$(MODULES) $(OUT_MODULES))

unit/%: ## Fast tests of one module, e.g. `make unit/triple`.
	@echo "==> unit $*"
	@scripts/test-module.sh $* $(GO_TEST_FLAGS) -short -timeout $(TEST_TIMEOUT)

test/%: ## All tests of one module, e.g. `make test/sdk`.
	@echo "==> test $*"
	@scripts/test-module.sh $* $(GO_TEST_FLAGS) -timeout $(TEST_TIMEOUT)

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME (default 10000 inputs) each.
	@scripts/fuzz.sh $(FUZZTIME) $(MODULES)

.PHONY: release-check
release-check: ## Release dry run: pack released modules into a local module proxy, build and run them as a user would.
	@echo "==> test tools/release"
	@cd tools/release && GOWORK=off go test -count=1 ./...
	@scripts/release-check.sh

.PHONY: release
release: ## Bump versions.yaml and requires to VERSION, commit, tag <dir>/VERSION in dependency order (DRY_RUN=1: only show).
	@scripts/release.sh $(if $(filter 1 true yes,$(DRY_RUN)),--dry-run) $(VERSION)

##@ Benchmarks

BENCH_CONTENDERS ?= tcp-floor,grpc-go,shoal,sidecar-pair,dubbo-go
BENCH_ROUNDS ?= 3

.PHONY: bench
bench: deps ## Shoal vs grpc-go vs a sidecar pair (vs dubbo-go), separate processes, interleaved rounds.
	@cd bench && go run ./cmd/shoalbench -contenders=$(BENCH_CONTENDERS) -rounds=$(BENCH_ROUNDS) -payloads=64,1024 -c=1,64

##@ Dependencies

.PHONY: deps
deps: ## Install everything the full test suite needs (apt packages, tools, control plane, Java).
	@scripts/deps.sh

.PHONY: tools
tools: ## Build the pinned developer tools into .cache/bin.
	@scripts/tools.sh

##@ Code quality

.PHONY: lint
lint: tools ## Lint every module with golangci-lint (.golangci.yml).
	@$(MAKE) $(addprefix lint/,$(MODULES) $(OUT_MODULES))

lint/%:
	@echo "==> lint $*"
	@cd $* && $(call gowork,$*) golangci-lint run --allow-parallel-runners --config $(ROOT)/.golangci.yml ./...

.PHONY: fmt
fmt: tools ## Format all Go code (gofumpt + goimports).
	@git ls-files -z '*.go' | xargs -0 -r gofumpt -w
	@git ls-files -z '*.go' | xargs -0 -r goimports -local github.com/shoalmesh/shoal -w

.PHONY: vuln
vuln: tools ## Run govulncheck on every module.
	@$(MAKE) $(addprefix vuln/,$(MODULES))

vuln/%:
	@echo "==> govulncheck $*"
	@cd $* && govulncheck ./...

.PHONY: tidy
tidy: ## Regenerate go.work (go work sync), then run go mod tidy in every module.
	@scripts/update-workspace.sh
	@scripts/tidy-released.sh $(RELEASED)
	@$(MAKE) $(addprefix tidy/,$(filter-out $(RELEASED),$(MODULES)) $(OUT_MODULES))

tidy/%:
	@$(if $(filter $*,$(RELEASED)),scripts/tidy-released.sh $*,cd $* && $(call gowork,$*) go mod tidy)

.PHONY: generate
generate: tools ## Regenerate all generated code (protobuf, Triple stubs).
	@scripts/generate.sh $(MODULES) $(OUT_MODULES)

##@ Verification (each `verify-x` fails where `make x` would change something)

.PHONY: verify
verify: verify-tidy verify-work verify-deps verify-generate ## Run every verify-* check.

.PHONY: verify-tidy
verify-tidy: ## Fail if a go.mod or go.sum is not tidy.
	@scripts/tidy-released.sh --check $(RELEASED)
	@scripts/verify-tidy.sh $(filter-out $(RELEASED),$(MODULES)) $(OUT_MODULES) tools/lint tools/release tools/proto tools/grpcurl tools/h2spec tools/buf tools/helm interop/dubbogo/tools
	@scripts/controlplane.sh -tidy-diff

.PHONY: verify-work
verify-work: ## Fail if go.work does not match the modules in the repository.
	@scripts/update-workspace.sh --check

.PHONY: verify-deps
verify-deps: ## Fail if two modules require different versions of one dependency.
	@scripts/verify-deps.sh $(MODULES)

.PHONY: verify-generate
verify-generate: tools ## Fail if generated code is out of date.
	@scripts/generate.sh --check $(MODULES) $(OUT_MODULES)

##@ Help

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} \
		/^##@/ {printf "\n%s\n", substr($$0, 5); next} \
		/^[a-zA-Z0-9_%\/-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
