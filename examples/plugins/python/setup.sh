#!/bin/sh
# Sets up the Python example plugin: a virtual environment in .venv with the
# pinned requirements, and the gRPC stubs generated from the protocol's
# .proto files into gen/. Idempotent: it redoes only what changed
# (requirements, Python version or .proto files), so hosts and tests may run
# it before every use.
#
#   examples/plugins/python/setup.sh            # set up (or check) in place
#   PYTHON=python3.12 examples/plugins/python/setup.sh
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
venv=$here/.venv
gen=$here/gen
python=${PYTHON:-python3}
runbook_proto=$repo/sdk/plugin/proto
goplugin_proto=$here/proto

say() { printf 'setup.sh: %s\n' "$*" >&2; }

if ! command -v "$python" >/dev/null 2>&1; then
	say "$python not found: install Python 3.10 or later (or set PYTHON)"
	exit 3
fi
# The pinned grpcio, grpcio-tools and protobuf need Python 3.10.
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
	say "$python is $("$python" -c 'import platform; print(platform.python_version())'): the plugin needs Python 3.10 or later (set PYTHON)"
	exit 3
fi

# One setup at a time: a second caller waits for the first, then finds
# everything up to date. mkdir is atomic, and a lock left by a killed run
# (its pid gone) is taken over.
lock=$here/.setup.lock
tries=0
while ! mkdir "$lock" 2>/dev/null; do
	holder=$(cat "$lock/pid" 2>/dev/null || true)
	if [ -n "$holder" ] && ! kill -0 "$holder" 2>/dev/null; then
		say "removing a stale lock left by process $holder"
		rm -rf "$lock"
		continue
	fi
	tries=$((tries + 1))
	if [ "$tries" -gt 600 ]; then
		say "another setup (pid ${holder:-unknown}) has held $lock for 10 minutes; giving up"
		exit 1
	fi
	sleep 1
done
echo $$ >"$lock/pid"
tmp=
trap 'rm -rf "$lock" ${tmp:+"$tmp"}' EXIT
trap 'exit 1' INT TERM HUP

# fingerprint FILE... prints a digest of the files' contents and of the
# Python version, using the base interpreter (no other tool assumed).
fingerprint() {
	"$python" - "$@" <<'EOF'
import hashlib, sys
h = hashlib.sha256(sys.version.encode())
for p in sys.argv[1:]:
    h.update(p.encode() + b"\0")
    with open(p, "rb") as f:
        h.update(f.read())
print(h.hexdigest())
EOF
}

want_venv=$(fingerprint "$here/requirements.txt")
have_venv=$(cat "$venv/.runbook-setup" 2>/dev/null || true)
if [ "$want_venv" != "$have_venv" ] || [ ! -x "$venv/bin/python" ]; then
	say "creating $venv"
	rm -rf "$venv" "$gen"
	"$python" -m venv "$venv"
	# --no-deps: requirements.txt pins the whole set; pip check then fails if
	# a pin is missing rather than letting pip pick an unpinned version.
	"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$here/requirements.txt"
	"$venv/bin/python" -m pip check >&2
	echo "$want_venv" >"$venv/.runbook-setup"
fi

protos="$runbook_proto/runbook/plugin/v1/plugin.proto $goplugin_proto/goplugin/grpc_controller.proto"
# shellcheck disable=SC2086 # the list is split on purpose
want_gen=$(fingerprint $protos "$here/requirements.txt")
have_gen=$(cat "$gen/.runbook-setup" 2>/dev/null || true)
if [ "$want_gen" != "$have_gen" ]; then
	say "generating gRPC stubs into $gen"
	tmp=$(mktemp -d "$here/.gen.XXXXXX")
	"$venv/bin/python" -m grpc_tools.protoc \
		-I "$runbook_proto" -I "$goplugin_proto" \
		--python_out="$tmp" --grpc_python_out="$tmp" \
		runbook/plugin/v1/plugin.proto goplugin/grpc_controller.proto
	echo "$want_gen" >"$tmp/.runbook-setup"
	rm -rf "$gen"
	mv "$tmp" "$gen"
fi
