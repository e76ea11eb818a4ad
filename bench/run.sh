#!/usr/bin/env bash
# Runs every benchmark and rewrites docs/benchmarks.md (`make bench`).
# Needs bin/ (make build) and the emulator's .venv (make venv); installs
# Ansible (pinned) into bench/.venv-ansible for the comparison, and uses
# strace (Debian package) to count fsyncs.
#
#   bench/run.sh              everything, for the document
#   bench/run.sh -quick       a smoke run (fewer sizes and repetitions)
#   BENCH_FLAGS=-skip-sim bench/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ANSIBLE_CORE=2.19.14  # the newest ansible-core that runs on Python 3.11
VENV=bench/.venv-ansible

if [ ! -x "$VENV/bin/ansible-playbook" ] || ! "$VENV/bin/ansible-playbook" --version 2>/dev/null | grep -q "core $ANSIBLE_CORE"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "ansible-core==$ANSIBLE_CORE"
fi
if ! command -v strace >/dev/null; then
  echo "bench: strace is needed to count fsyncs (apt-get install strace)" >&2
fi

# shellcheck disable=SC2086
exec go run ./bench/cmd/bench -ansible "$VENV/bin/ansible-playbook" ${BENCH_FLAGS:-} "$@"
