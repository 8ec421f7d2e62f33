#!/usr/bin/env bash
# The main job, on the lab: 3 control planes + 1 worker from Linux namespaces running the real
# kubelet, containerd, control plane, etcd and kube-vip (built from upstream sources and cached by
# `python -m lab build`). The nodes start bare and air-gapped; playbooks/node_prep.yml installs
# Kubernetes from the pin's bundle, and playbooks/site.yml bootstraps;
# then where the VIP answers and every node through it. Expects scripts/setup.sh to have run; needs root.
# The lab stays up afterwards (python -m lab down to remove it).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" ANSIBLE_CONFIG="$PWD/ansible.cfg"
state="${VIPADM_LAB_DIR:-$PWD/.lab}"
lab() { python -m lab --state-dir "$state" "$@"; }

if [ ! -f "$state/inventory/hosts.yml" ]; then
  # Builds the components the first time (about 12 min on 2 cores), then takes them from the cache.
  # VIPADM_LAB_SUBNET: another slice of 198.51.100.0/24 when test labs hold part of it.
  # Bare nodes, as air-gapped machines: containerd only, no route out of the lab.
  lab up --bare-nodes --control-planes 3 --workers 1 ${VIPADM_LAB_SUBNET:+--subnet "$VIPADM_LAB_SUBNET" --name demo}
  # node_prep installs kubeadm, the kubelet, kubectl and every image from the pin's bundle (docs/air-gapped.md)
  # and does what bare metal needs before kubeadm (sysctls, containerd's configuration).
  ansible-playbook -i "$state/inventory" playbooks/node_prep.yml
fi
start=$(date +%s)
ansible-playbook -i "$state/inventory" playbooks/site.yml
vip=$(sed -n 's/^kube_vip_address: *//p' "$state/inventory/group_vars/all.yml")
echo
echo "demo: HA control plane bootstrapped in $(( $(date +%s) - start )) s."
echo "demo: waiting for every node to be Ready (the lab's pod network gives each node its podCIDR)"
lab kubectl -- wait --for=condition=Ready node --all --timeout=180s >/dev/null
echo "demo: the API answers at https://$vip:6443 (the VIP, held by kube-vip on one control plane); through it:"
lab kubectl -- get nodes -o wide
echo
lab status || true
echo "demo: try  python -m lab --state-dir $state kubectl -- get pods -A -o wide"
