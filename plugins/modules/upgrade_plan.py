#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: upgrade_plan
short_description: Decide the steps of a kubeadm upgrade left on each node, or refuse it before anything changes
version_added: 0.1.0
description:
  - Runs on a control plane and changes nothing. Reads the cluster's Kubernetes version (C(kubernetesVersion) of
    the C(kubeadm-config) ConfigMap) and every Node (its kubelet version, whether it is cordoned and whether
    vipadm drained it) with C(kubectl), through this control plane's own API server.
  - Refuses, with one sentence naming every problem, a target that is older than the cluster (a downgrade), more
    than one minor newer (kubeadm upgrades one minor at a time), outside the releases vipadm supports, kubelets
    more than 3 minors older than the target, an inventory node that is not a Node of the cluster, and a control
    plane whose C(kube-apiserver.yaml) names no version.
  - Per inventory host, the steps left in kubeadm's documented order - kubeadm of the target release, C(kubeadm
    upgrade apply) on the first control plane while the cluster is older than the target (C(kubeadm upgrade node)
    on the others), the drain, kubelet and kubectl of the target and the kubelet's restart, the uncordon. A node
    where all of it is done has none, so a finished upgrade changes nothing and a stopped one resumes.
author:
  - vipadm developers (@vipadm)
attributes:
  check_mode:
    support: full
    description: Reads only; the same in check mode.
  diff_mode:
    support: none
    description: Changes nothing.
  platform:
    support: full
    platforms: posix
    description: Runs on a kubeadm control plane with C(kubectl) and C(/etc/kubernetes/admin.conf).
options:
  version:
    description: The Kubernetes release to upgrade to, such as V(1.37.2).
    type: str
    required: true
  nodes:
    description:
      - The inventory's nodes, control planes first in inventory order (the first one runs C(kubeadm upgrade apply)).
      - Each with C(host) (the inventory host), C(name) (its Node name), C(role) (V(control_plane) or V(worker)),
        C(kubeadm_version) and C(kubelet_version) (what the node's binaries print), and for a control plane
        C(api_server_version) (the image tag of its C(kube-apiserver.yaml)), as M(vipadm.kubeadm.preflight_facts)
        reports them.
    type: list
    elements: dict
    required: true
extends_documentation_fragment:
  - vipadm.kubeadm.kubectl
seealso:
  - module: vipadm.kubeadm.kubeadm_upgrade
  - module: vipadm.kubeadm.cluster_node
"""

EXAMPLES = r"""
- name: Plan the upgrade to 1.37.2
  vipadm.kubeadm.upgrade_plan:
    version: 1.37.2
    nodes:
      - {host: cp1, name: cp1, role: control_plane, kubeadm_version: v1.36.3, kubelet_version: Kubernetes v1.36.3,
         api_server_version: v1.36.3}
      - {host: worker1, name: worker1, role: worker, kubeadm_version: v1.36.3, kubelet_version: Kubernetes v1.36.3}
  delegate_to: cp1
  run_once: true
  register: upgrade
"""

RETURN = r"""
target:
  description: The release upgraded to, without a V(v).
  returned: success
  type: str
  sample: 1.37.2
cluster:
  description: The cluster's Kubernetes version before the upgrade (C(kubernetesVersion) of C(kubeadm-config)).
  returned: success
  type: str
  sample: 1.36.3
apply_host:
  description: The inventory host that runs C(kubeadm upgrade apply); null when the cluster is at the target.
  returned: success
  type: str
  sample: cp1
nodes:
  description: Per inventory host, the steps left - C(install_kubeadm) (bool), C(kubeadm_upgrade) (V(apply),
    V(node) or null), C(kubelet) (drain, kubelet and kubectl, restart), C(uncordon) (bool).
  returned: success
  type: dict
  sample: {"cp1": {"install_kubeadm": true, "kubeadm_upgrade": "apply", "kubelet": true, "uncordon": true}}
left:
  description: The inventory hosts with a step left, in inventory order; empty when the upgrade is done.
  returned: success
  type: list
  elements: str
  sample: [cp2, cp3, worker1]
steps:
  description: One line per host saying what the upgrade does there.
  returned: success
  type: list
  elements: str
  sample: ["cp1: install kubeadm 1.37.2, kubeadm upgrade apply v1.37.2, drain, kubelet and kubectl 1.37.2, restart the kubelet, uncordon"]
outside:
  description: The Nodes of the cluster the inventory does not list (their kubelets are not upgraded; a warning
    says so).
  returned: success
  type: list
  elements: str
listed_nodes:
  description: Every Node as read (C(name), C(ready), C(control_plane), C(unschedulable), C(kubelet_version),
    C(drained_for)).
  returned: always
  type: list
  elements: dict
api_server:
  description: The API server C(kubectl) was pointed at.
  returned: success
  type: str
  sample: https://198.51.100.11:6443
"""

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _module_run as module_run
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _upgrade as upgrade

FILESYSTEM_ROOT = '/'


def argument_spec():
    return dict(
        version=dict(type='str', required=True),
        nodes=dict(type='list', elements='dict', required=True),
        kubeconfig=dict(type='path', default='/etc/kubernetes/admin.conf'),
        server=dict(type='str'),
        kubectl_path=dict(type='str', default='kubectl'),
    )


def main():
    module_run.main(argument_spec(), upgrade.upgrade_plan, FILESYSTEM_ROOT, binary='kubectl_path')


if __name__ == '__main__':
    main()
