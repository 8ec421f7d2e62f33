#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine for vipadm's tests and lab: Debian packages the lab needs,
# then a Python virtual environment (.venv) with the pinned tool versions. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: sshd and arping (preflight's VIP check) for the lab nodes, etcdctl (etcd-client) for
# the tests that ask a node's etcd; containerd, runc, the CNI plugins, conntrack and socat for real
# nodes (what a bare-metal node has before kubeadm); gcc + libc6-dev to build pause. Inside the nodes
# Python is /usr/bin/python3 with its standard library only.
LAB_DEBS="iptables openssh-server openssh-client iputils-arping iproute2 etcd-client python3 util-linux containerd runc containernetworking-plugins conntrack socat gcc libc6-dev"
missing=""
for p in $LAB_DEBS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages:$missing (run as root, or install them with apt-get)" >&2
    exit 1
  fi
  echo "setup: installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends $missing >/dev/null 2>&1 || {
    apt-get update >/dev/null && apt-get install -y --no-install-recommends $missing >/dev/null
  }
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! cmp -s requirements-dev.txt .venv/.requirements-installed 2>/dev/null; then
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
  cp requirements-dev.txt .venv/.requirements-installed
fi

# The lab builds Kubernetes, etcd, CoreDNS and kube-vip from source (python -m lab build): Go 1.24+.
if ! command -v go >/dev/null 2>&1; then
  echo "setup: Go is missing: the lab builds Kubernetes from source; install Go 1.24 or newer (https://go.dev/dl/) and put it on PATH" >&2
  exit 1
fi
