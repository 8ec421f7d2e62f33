#!/usr/bin/env bash
# Runs every test of vipadm: linters, ansible-test sanity, the lab's components build (cached),
# pytest (unit, integration, lab, reliability) and the Molecule scenario on the lab. Expects scripts/setup.sh to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"

step() { printf '\n== %s\n' "$*"; }

step "yamllint"
yamllint -s .
step "ansible-lint (production profile)"
ansible-lint --profile production -q
if [ -x scripts/sanity.sh ]; then
  step "ansible-test sanity"
  scripts/sanity.sh
fi
step "lab components (built from upstream sources, or taken from the cache)"
python -m lab build --all   # every release the lab nodes run (the default and the one before: test_site, the skew test), every kube-vip tag and kubeadm of every minor (the differential and per-minor tests)
step "pytest"
rc=0; pytest "$@" || rc=$?
[ "$rc" = 0 ] || [ "$rc" = 5 ] || exit "$rc"   # 5 = no tests collected
if [ -f molecule/default/molecule.yml ]; then
  step "molecule test (default scenario, on the lab)"
  molecule test -s default
fi
