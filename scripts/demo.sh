#!/usr/bin/env bash
# The main job, on the lab: 3 control planes + 1 worker from Linux namespaces, the eight steps of
# playbooks/site.yml, then where the VIP answers. Expects scripts/setup.sh to have run; needs root.
# The lab stays up afterwards (python -m lab down to remove it).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg"
state="${VIPADM_LAB_DIR:-$PWD/.lab}"

if [ ! -f "$state/inventory/hosts.yml" ]; then
  # VIPADM_LAB_SUBNET: another slice of 198.51.100.0/24 when test labs hold part of it.
  python -m lab --state-dir "$state" up --control-planes 3 --workers 1 \
    ${VIPADM_LAB_SUBNET:+--subnet "$VIPADM_LAB_SUBNET" --name demo}
  # The lab's nodes come with kubeadm (the simulator); node_prep does what bare metal needs first.
  ansible-playbook -i "$state/inventory" playbooks/node_prep.yml
fi
start=$(date +%s)
ansible-playbook -i "$state/inventory" playbooks/site.yml
vip=$(sed -n 's/^kube_vip_address: *//p' "$state/inventory/group_vars/all.yml")
echo
echo "demo: HA control plane bootstrapped in $(( $(date +%s) - start )) s."
echo "demo: the API answers at https://$vip:6443 (the VIP, held by kube-vip on one control plane):"
python -m lab --state-dir "$state" status || true
echo "demo: try  curl --cacert <(python -m lab --state-dir $state exec cp1 -- cat /etc/kubernetes/pki/ca.crt) https://$vip:6443/livez"
