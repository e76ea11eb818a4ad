# runbook: build, test, simulate.
SHELL := /bin/bash
GO ?= go
VENV := .venv
PY := $(VENV)/bin/python
BIN := bin
PLUGINS := aws dns k8sworkers notify spacelift

.PHONY: all build venv proto proto-check test fuzz reliability bench demo clean

all: build

# Plugins are built static (CGO off): the dynamic loader then has nothing
# to load into them, so no LD_PRELOAD or library path can change what runs
# beyond the binary runbook.lock pins (docs/plugins.md, "Trust").
build:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./cmd/... 
	@for p in $(PLUGINS); do if [ -d plugins/$$p ]; then CGO_ENABLED=0 $(GO) build -o $(BIN)/runbook-plugin-$$p ./plugins/$$p || exit 1; fi; done
	CGO_ENABLED=0 $(GO) build -o $(BIN)/runbook-plugin-hello ./examples/plugins/hello
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
# `go mod download` first: the scaffold test builds a generated plugin module
# offline (GOPROXY=off), from the module cache, which must then hold every
# module of the build list, not only those the packages built so far needed.
test: venv build
	$(GO) mod download
	$(GO) test -timeout 30m ./...

# Coverage-guided fuzzing of the loader and validator, the ${{ }} templates,
# expression evaluation within its bounds, the redactor,
# var parsing and the journal reader: FUZZTIME each (10 minutes each in
# `make reliability`). A failing input is written under the package's
# testdata/fuzz/; committed there, `make test` runs it with the seeds.
FUZZTIME ?= 15s
FUZZ_TARGETS := sdk/runbook:FuzzParse sdk/runbook:FuzzTemplate sdk/runbook:FuzzVars sdk/journal:FuzzParse sdk/expr:FuzzEval sdk/redact:FuzzRedactor
fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "fuzz: $$fn in ./$$pkg for $(FUZZTIME)"; \
	  out=$$($(GO) test ./$$pkg -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) 2>&1) || { echo "$$out"; exit 1; }; \
	  echo "$$out" | grep -E '^fuzz: elapsed' | tail -n 1; \
	done

# The full reliability sets (docs/reliability.md): every crash point, every
# plugin death, every API fault and regional outage, split brain; the
# acceptance tests with the adversarial corpus (testdata/adversarial) and its
# generated 4 MB files, the hostile input corpus (testdata/hostile), signals,
# processes, pins and printed commands, and the state and plugin host tests;
# then each fuzz target for 10 minutes. `make test` runs a reduced set of each.
RELIABILITY_TESTS := TestCrashMatrix|TestCrashThenRollback|TestRollbackAfterFinish|TestPluginDeaths|TestAPIFaults|TestRegionalOutages|TestFailoverDuringAnotherSwitchover|TestServicesRefusedWhereTheWriterIsNot
reliability: venv build
	@mkdir -p .sim
	RUNBOOK_FULL_RELIABILITY=1 $(GO) test -count=1 -timeout 120m -v -run '^($(RELIABILITY_TESTS))$$' ./sim/scenarios/ \
	  | tee .sim/reliability.log | grep -E '^(\s*--- |ok|FAIL|PASS)|crash matrix:|plugin deaths:|proxy saw|held unanswered|refused:'; \
	  rc=$${PIPESTATUS[0]}; echo "full log: .sim/reliability.log"; exit $$rc
	RUNBOOK_FULL_RELIABILITY=1 $(GO) test -count=1 ./test/acceptance/ ./test/pty/ ./sdk/journal/... ./sdk/safefile/ ./sdk/pluginhost/ ./sdk/expr/ ./sdk/redact/ ./internal/termtext/
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
