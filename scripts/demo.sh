#!/usr/bin/env bash
# The main job, on the lab (the built-in default target). Expects scripts/setup.sh to have run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg"
echo "demo: not wired yet" >&2
exit 1
