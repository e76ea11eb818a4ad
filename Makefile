# runbook: build, test, simulate.
SHELL := /bin/bash
GO ?= go
VENV := .venv
PY := $(VENV)/bin/python
BIN := bin
PLUGINS := aws dns k8sworkers notify spacelift

.PHONY: all build venv proto proto-check test fuzz reliability bench demo clean

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
	@$(MAKE) --no-print-directory fuzz

# Coverage-guided fuzzing of the loader and validator, the ${{ }} templates,
# var parsing and the journal reader: FUZZTIME each (brief in `make test`,
# 10 minutes each in `make reliability`). A failing input is written under
# the package's testdata/fuzz/ and fails the target.
FUZZTIME ?= 15s
FUZZ_TARGETS := sdk/runbook:FuzzParse sdk/runbook:FuzzTemplate sdk/runbook:FuzzVars sdk/journal:FuzzParse
fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzz: $$fn in ./$$pkg for $(FUZZTIME)"; \
	  out=$$($(GO) test ./$$pkg -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) 2>&1) || { echo "$$out"; exit 1; }; \
	  echo "$$out" | grep -E '^fuzz: elapsed' | tail -n 1; \
	done

# The full reliability sets (docs/reliability.md): every crash point, every
# plugin death, every API fault and regional outage, split brain; then each
# fuzz target for 10 minutes. `make test` runs a reduced set of each.
RELIABILITY_TESTS := TestCrashMatrix|TestCrashThenRollback|TestPluginDeaths|TestAPIFaults|TestRegionalOutages|TestFailoverDuringAnotherSwitchover|TestServicesRefusedWhereTheWriterIsNot
reliability: venv build
	@mkdir -p .sim
	RUNBOOK_FULL_RELIABILITY=1 $(GO) test -count=1 -timeout 120m -v -run '^($(RELIABILITY_TESTS))$$' ./sim/scenarios/ \
	  | tee .sim/reliability.log | grep -E '^(\s*--- |ok|FAIL|PASS)|crash matrix:|plugin deaths:|proxy saw|held unanswered|refused:'; \
	  rc=$${PIPESTATUS[0]}; echo "full log: .sim/reliability.log"; exit $$rc
	$(GO) test -count=1 ./test/acceptance/ ./sdk/journal/s3store/
	@$(MAKE) --no-print-directory fuzz FUZZTIME=10m

# Every figure of docs/benchmarks.md, side by side with its peer; rewrites
# the document (bench/run.sh -quick for a smoke run).
bench: venv build
	bench/run.sh

# The main job: fail over and back against the local simulation.
demo: venv build
	sim/demo.sh

clean:
	rm -rf $(BIN)
