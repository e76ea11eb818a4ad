#!/usr/bin/env bash
# The main job on a fresh machine (`make demo`): start the local two-region
# AWS simulation, fail over to the DR region and back with live progress and
# summaries, then stop the simulation. Nothing is left running.
#
#   DEMO_TIMING=realistic make demo   # real-world timings divided by ten (a few minutes)
#   DEMO_PORT=0 make demo             # any free port instead of 4566
set -euo pipefail
cd "$(dirname "$0")/.."

SIM=.sim/demo
TIMING=${DEMO_TIMING:-ci}
PORT=${DEMO_PORT:-4566}
export PATH="$PWD/bin:$PATH" RUNBOOK_PLUGIN_PATH="$PWD/bin"

# The demo pins the plugins it built (runbooks/runbook.lock) and removes that
# pin when it ends, unless one was there before: a lock left behind pins
# bin/'s plugins, and the scenario tests (which build their own) would then
# be refused as unpinned.
LOCK=runbooks/runbook.lock
OWN_LOCK=1
[ -e "$LOCK" ] && OWN_LOCK=0
stop() {
  simctl down --dir "$SIM" >/dev/null 2>&1 || true
  if [ "$OWN_LOCK" = 1 ]; then rm -f "$LOCK"; fi
}
simctl down --dir "$SIM" >/dev/null 2>&1 || true
trap stop EXIT
trap 'exit 130' INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Starting the simulation (moto + extensions behind the fault proxy, timing: $TIMING)"
simctl up --dir "$SIM" --timing "$TIMING" --port "$PORT"
set -a
# shellcheck disable=SC1091
. "$SIM/env"
set +a

args=(--var "primary=@$SIM/config.json" --var "dr=@$SIM/config.dr.json"
      --var-file "$SIM/inputs.json" --var poll_interval=500ms --state "$SIM/state")

step "Pinning the plugins ($LOCK, removed at the end unless it was there before)"
runbook plugins lock runbooks/failover.yaml runbooks/failback.yaml

step "Validating the runbooks"
runbook validate runbooks/failover.yaml runbooks/failback.yaml

step "Planning the failover (changes nothing)"
runbook plan runbooks/failover.yaml "${args[@]}"

step "Failing over to the DR region"
runbook run runbooks/failover.yaml --auto-approve "${args[@]}"

step "Failing back to the primary region"
runbook run runbooks/failback.yaml --auto-approve "${args[@]}"

step "Runs"
runbook runs --state "$SIM/state"
for id in $(runbook runs --state "$SIM/state" -o json | sed -n 's/.*"run_id":"\([^"]*\)".*/\1/p'); do
  if runbook report --help >/dev/null 2>&1; then
    runbook report "$id" --state "$SIM/state" --format html -o "$SIM/report-$id.html" >/dev/null 2>&1 &&
      echo "report: $SIM/report-$id.html"
  fi
done

step "Stopping the simulation"
