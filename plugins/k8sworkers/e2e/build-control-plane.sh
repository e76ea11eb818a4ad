#!/usr/bin/env bash
# Builds etcd, kube-apiserver and kube-controller-manager from the Go module
# proxy into OUTDIR, for the k8sworkers end-to-end test:
#
#   plugins/k8sworkers/e2e/build-control-plane.sh /tmp/k8s-bin
#   RUNBOOK_K8S_E2E_BIN=/tmp/k8s-bin go test -run E2E ./plugins/k8sworkers/
#
# `go install k8s.io/kubernetes/cmd/kube-apiserver@v1.x` is refused because
# kubernetes' go.mod replaces its staging modules (k8s.io/api, ...) with
# ./staging/src/...; etcd's server module does the same with ../api etc. So
# each is built from a scratch module that requires it and replaces those
# modules with their published versions. See docs/plugins/k8sworkers.md for
# the timings.
set -euo pipefail

out=${1:?usage: $0 OUTDIR}
k8s_version=${K8S_VERSION:-v1.37.2} # the release of client-go v0.37.2 in go.mod
etcd_version=${ETCD_VERSION:-v3.6.8}
staging_version=v0.${k8s_version#v1.}

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GOFLAGS=-mod=mod GOWORK=off

# replaces MODFILE PREFIX VERSION prints -replace flags that swap every
# module PREFIX... replaced by a local path in MODFILE for PREFIX...@VERSION.
replaces() {
	awk -v prefix="$2" -v version="$3" '
		$2 == "=>" && index($1, prefix) == 1 && ($3 ~ /^\./) { printf "-replace=%s=%s@%s\n", $1, $1, version }
	' "$1"
}

echo "kubernetes $k8s_version (staging modules $staging_version)"
mkdir "$work/k8s"
cd "$work/k8s"
go mod init e2e/k8s >/dev/null 2>&1
k8smod=$(go mod download -json "k8s.io/kubernetes@$k8s_version" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
go mod edit -require="k8s.io/kubernetes@$k8s_version" $(replaces "$k8smod" k8s.io/ "$staging_version")
time go build -o "$out/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
time go build -o "$out/kube-controller-manager" k8s.io/kubernetes/cmd/kube-controller-manager

echo "etcd $etcd_version"
mkdir "$work/etcd"
cd "$work/etcd"
go mod init e2e/etcd >/dev/null 2>&1
etcdmod=$(go mod download -json "go.etcd.io/etcd/server/v3@$etcd_version" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
go mod edit -require="go.etcd.io/etcd/server/v3@$etcd_version" $(replaces "$etcdmod" go.etcd.io/etcd/ "$etcd_version")
time go build -o "$out/etcd" go.etcd.io/etcd/server/v3

ls -l "$out"
