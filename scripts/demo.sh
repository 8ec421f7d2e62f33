#!/usr/bin/env bash
# The main job, on the lab: 3 control planes + 1 worker from Linux namespaces, the eight steps of
# playbooks/site.yml, then where the VIP answers. Expects scripts/setup.sh to have run; needs root.
# The lab stays up afterwards (python -m lab down to remove it).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg"
state="${VIPADM_LAB_DIR:-$PWD/.lab}"

if [ ! -f "$state/inventory/hosts.yml" ]; then
  python -m lab --state-dir "$state" up --control-planes 3 --workers 1
fi
start=$(date +%s)
ansible-playbook -i "$state/inventory" playbooks/site.yml
vip=$(sed -n 's/^kube_vip_address: *//p' "$state/inventory/group_vars/all.yml")
echo
echo "demo: HA control plane bootstrapped in $(( $(date +%s) - start )) s."
echo "demo: the API answers at https://$vip:6443 (the VIP, held by kube-vip on one control plane):"
python -m lab --state-dir "$state" status || true
echo "demo: try  curl --cacert <(python -m lab --state-dir $state exec cp1 -- cat /etc/kubernetes/pki/ca.crt) https://$vip:6443/livez"
