#!/usr/bin/env bash
# Runs every test of vipadm: linters, ansible-test sanity, the lab's components build (cached),
# pytest (unit, integration, lab, reliability) and the Molecule scenario on the lab. Expects scripts/setup.sh to have run.
#
# The components build starts first, in the background: on a machine without the cache it takes about 45 minutes,
# a quarter of which waits on the Go module proxy, and the linters, sanity and the unit tests (which need no built
# component) run meanwhile. The tests that do need it run once it finished. Arguments go to one pytest run of
# everything, after the build (no overlap then).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"

started=$(date +%s)
step() { printf '\n== [%4d s] %s\n' "$(( $(date +%s) - started ))" "$*"; }

# Every release the lab nodes run (the default and the one before: test_site, the skew and upgrade tests), every
# kube-vip tag and kubeadm of every minor (the differential and per-minor tests).
build_log=$(mktemp /tmp/vipadm-build.XXXXXX.log)
step "lab components (built from upstream sources, or taken from the cache), in the background: $build_log"
python -m lab build --all >"$build_log" 2>&1 &
build_pid=$!
trap 'kill "$build_pid" 2>/dev/null || true' EXIT
wait_for_build() {
  local rc=0
  wait "$build_pid" || rc=$?
  trap - EXIT
  cat "$build_log"
  [ "$rc" = 0 ] || { echo "test: the lab components build failed (exit $rc), see above" >&2; exit "$rc"; }
}

pytest_ok() { local rc=0; pytest "$@" || rc=$?; [ "$rc" = 0 ] || [ "$rc" = 5 ] || exit "$rc"; }  # 5 = none collected

step "yamllint"
yamllint -s .
step "ansible-lint (production profile)"
ansible-lint --profile production -q
if [ -x scripts/sanity.sh ]; then
  step "ansible-test sanity"
  scripts/sanity.sh
fi

# The kube-vip differential test asks the built kube-vip of every tag: it runs after the build.
DIFFERENTIAL=tests/unit/module_utils/test_kube_vip_differential.py
if [ $# -eq 0 ]; then
  step "pytest: unit tests (while the components build)"
  pytest_ok tests/unit --ignore="$DIFFERENTIAL"
  step "waiting for the lab components build"
  wait_for_build
  step "pytest: the kube-vip differential test"
  pytest_ok "$DIFFERENTIAL"
  step "pytest: integration, lab and reliability suites"
  pytest_ok --ignore=tests/unit
else
  step "waiting for the lab components build"
  wait_for_build
  step "pytest $*"
  pytest_ok "$@"
fi

if [ -f molecule/default/molecule.yml ]; then
  step "molecule test (default scenario, on the lab)"
  molecule test -s default
fi
step "done"
