# runbook: build, test, simulate.
SHELL := /bin/bash
GO ?= go
VENV := .venv
PY := $(VENV)/bin/python
BIN := bin
PLUGINS := aws dns k8sworkers notify spacelift

.PHONY: all build venv proto proto-check test demo clean

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/... 
	@for p in $(PLUGINS); do if [ -d plugins/$$p ]; then $(GO) build -o $(BIN)/runbook-plugin-$$p ./plugins/$$p || exit 1; fi; done
	$(GO) build -o $(BIN)/runbook-plugin-hello ./examples/plugins/hello
	$(GO) build -o $(BIN)/simctl ./sim/cmd/simctl

# The emulator's Python environment, from the pinned requirements.
venv: $(VENV)/.stamp
$(VENV)/.stamp: sim/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r sim/requirements.txt
	@touch $@

proto:
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" protoc -I sdk/plugin/proto \
	  --plugin=protoc-gen-go="$$($(GO) tool -n protoc-gen-go)" \
	  --plugin=protoc-gen-go-grpc="$$($(GO) tool -n protoc-gen-go-grpc)" \
	  --go_out=sdk/plugin/proto --go_opt=paths=source_relative \
	  --go-grpc_out=sdk/plugin/proto --go-grpc_opt=paths=source_relative \
	  runbook/plugin/v1/plugin.proto

# Regenerates the protocol code and fails if the committed code differs.
proto-check: proto
	git diff --exit-code -- sdk/plugin/proto

# Every test: unit, plugins, acceptance (real binaries and plugin processes)
# and the simulation scenarios (the DR runbooks against the emulator).
test: venv build
	$(GO) test -timeout 30m ./...

# The main job: fail over and back against the local simulation.
demo: venv build
	sim/demo.sh

clean:
	rm -rf $(BIN)
