#!/usr/bin/env bash
# Runs every test of vipadm: linters, ansible-test sanity, the lab's components build (cached),
# pytest (unit, integration, lab, reliability) and the Molecule scenario on the lab. Expects scripts/setup.sh to have run.
#
# The components build starts first, in the background: on a machine without the cache it takes about an hour,
# and the linters, sanity and the unit tests (which need no built component) run meanwhile. The releases the lab's
# nodes run are built first (about half an hour cold); the lab suites start then, while the rest of the build (every
# kube-vip tag, kubeadm of every minor) goes on beside them at a lower priority, and the two suites that need the
# rest run at the end. The lab suites run in two lanes at once, each on its own
# labs (lab/slices.py): the lab suites wait on kubeadm, the kubelet and etcd far more than they compute (the upgrade
# test alone is 15 minutes, most of it kubeadm waiting for static Pods), so two lanes on 2 cores take about 60 % of
# the time one lane takes. Arguments go to one pytest run of everything, after the build (no overlap then).
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
pins_ready=$(mktemp -u /tmp/vipadm-pins-ready.XXXXXX)
python -m lab build --all --jobs 2 --pins-ready "$pins_ready" >"$build_log" 2>&1 &
build_pid=$!
build_done=false
lane2_pid=""
# On any exit: the background build and lane 2 end with the script (a script's background jobs ignore Ctrl-C).
cleanup() {
  [ -z "$lane2_pid" ] || end_tree "$lane2_pid"
  "$build_done" || kill "$build_pid" 2>/dev/null || true
}
trap cleanup EXIT
wait_for_build() {
  "$build_done" && return 0
  local rc=0
  wait "$build_pid" || rc=$?
  build_done=true
  rm -f "$pins_ready"
  cat "$build_log"
  [ "$rc" = 0 ] || { echo "test: the lab components build failed (exit $rc), see above" >&2; exit "$rc"; }
}
# The pins the lab's nodes run come first; on a cold machine the rest (kube-vip tags, kubeadm of the other minors,
# about 20 minutes) builds on beside the lanes, at a lower priority than the labs.
wait_for_pins() {
  while [ ! -e "$pins_ready" ]; do
    kill -0 "$build_pid" 2>/dev/null || { wait_for_build; return 0; }
    sleep 5
  done
  renice -n 10 -p $(tree_pids "$build_pid") >/dev/null 2>&1 || true
}

# A process and all its descendants, the descendants first.
tree_pids() {
  local child
  for child in $(pgrep -P "$1"); do tree_pids "$child"; done
  echo "$1"
}
# A background lane's processes, by PID (a script's background jobs ignore Ctrl-C).
end_tree() {
  kill $(tree_pids "$1") 2>/dev/null || true
}

molecule_test() {
  step "molecule test (default scenario, on the lab)"
  molecule test -s default
}

# About equal halves of the lab suites' time (each lane alone, figures of one lane before: upgrade 984 s, day 2
# 430 s, Services of type LoadBalancer 144 s, the bench smoke 134 s, Molecule 249 s; lane 1 the rest, IPv6 included).
LANE2=(tests/integration/test_upgrade_real.py tests/integration/test_day2_real.py
       tests/integration/test_load_balancer_real.py tests/integration/test_bench_smoke.py)
LANE2_IGNORED=()
for path in "${LANE2[@]}"; do LANE2_IGNORED+=("--ignore=$path"); done

pytest_ok() { local rc=0; pytest "$@" || rc=$?; [ "$rc" = 0 ] || [ "$rc" = 5 ] || exit "$rc"; }  # 5 = none collected

step "yamllint"
yamllint -s .
step "ansible-lint (production profile)"
ansible-lint --profile production -q
if [ -x scripts/sanity.sh ]; then
  step "ansible-test sanity"
  scripts/sanity.sh
fi

# The suites that need the whole build: the kube-vip differential test asks the built kube-vip of every tag, the
# config validation the kubeadm of every minor. They run after lane 1, once the build finished.
DIFFERENTIAL=tests/unit/module_utils/test_kube_vip_differential.py
CONFIG_VALIDATE=tests/integration/test_kubeadm_config_validate.py
if [ $# -eq 0 ]; then
  step "pytest: unit tests (while the components build)"
  pytest_ok tests/unit --ignore="$DIFFERENTIAL"
  step "waiting for the pins the lab's nodes run (the rest of the build goes on beside the lanes)"
  wait_for_pins
  # Lane 2, in the background: LANE2's suites (-m "" lifts pytest.ini's deselection of the upgrade) and Molecule.
  # Lane 1, here: every other suite. Each lane takes about half an hour when it runs alone.
  lane2_log=$(mktemp /tmp/vipadm-lane2.XXXXXX.log)
  step "lane 2 in the background (${LANE2[*]}, Molecule): $lane2_log"
  (
    rc=0
    (pytest_ok -p no:cacheprovider -m "" "${LANE2[@]}") || rc=$?
    molecule_test || rc=$?
    exit "$rc"
  ) >"$lane2_log" 2>&1 &
  lane2_pid=$!
  step "lane 1: integration, lab and reliability suites"
  lane1_rc=0
  (pytest_ok --ignore=tests/unit "${LANE2_IGNORED[@]}" --ignore="$CONFIG_VALIDATE") || lane1_rc=$?
  step "waiting for the lab components build"
  wait_for_build
  step "pytest: the kube-vip differential test and kubeadm's config validation of every minor"
  (pytest_ok "$DIFFERENTIAL" "$CONFIG_VALIDATE") || lane1_rc=$?
  step "waiting for lane 2"
  lane2_rc=0
  wait "$lane2_pid" || lane2_rc=$?
  lane2_pid=""
  trap - EXIT
  cat "$lane2_log"
  step "lane 1 exit $lane1_rc, lane 2 exit $lane2_rc"
  [ "$lane1_rc" = 0 ] && [ "$lane2_rc" = 0 ] || exit 1
else
  step "waiting for the lab components build"
  wait_for_build
  step "pytest $*"
  pytest_ok "$@"
  molecule_test
fi
step "done"
