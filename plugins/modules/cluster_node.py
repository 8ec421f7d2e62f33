#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cluster_node
short_description: Drain, uncordon or delete a Node of a kubeadm cluster, with kubectl on a control plane
version_added: 0.1.0
description:
  - Runs on a control plane. Calls C(kubectl) with O(kubeconfig) against this control plane's own API server
    (the address and port of its C(kube-apiserver.yaml)), not the VIP, which may be moving while a control
    plane leaves.
  - V(drained) - C(kubectl drain --ignore-daemonsets --delete-emptydir-data --force), as the kubeadm
    documentation drains a node before it leaves; no change when the Node is cordoned already and no pod
    is left that a drain would evict (mirror Pods, DaemonSet Pods and finished Pods do not count).
  - V(uncordoned) - waits until the Node is Ready (on O(kubelet_version) when given), then C(kubectl uncordon);
    with O(reason), only a Node that this module drained with the same O(reason) (the annotation
    C(vipadm.kubeadm/drained-for)), so that a Node somebody else cordoned stays cordoned; the annotation goes.
  - V(absent) - C(kubectl delete node); C(kubeadm reset) does not delete the Node.
  - No Node of that name, no change.
author:
  - vipadm developers (@vipadm)
attributes:
  check_mode:
    support: full
    description: Reads the Node and its pods; reports what a drain would evict, changes nothing.
  diff_mode:
    support: none
    description: Changes an object of the cluster, not a file.
  platform:
    support: full
    platforms: posix
    description: Runs on a kubeadm control plane with C(kubectl).
options:
  name:
    description: The Node's name.
    type: str
    required: true
  state:
    description: V(drained) cordons the Node and evicts its pods; V(uncordoned) makes it schedulable again once it
      is Ready; V(absent) deletes it.
    type: str
    choices: [drained, uncordoned, absent]
    required: true
  reason:
    description:
      - With V(drained), a schedulable Node is first annotated C(vipadm.kubeadm/drained-for=<reason>); with
        V(uncordoned), only a Node with that annotation is uncordoned. Without it, V(uncordoned) uncordons any
        cordoned Node.
    type: str
  kubelet_version:
    description: With V(uncordoned), the kubelet version the Node must report (C(status.nodeInfo.kubeletVersion))
      before it is uncordoned, such as V(1.37.2).
    type: str
  timeout:
    description: Seconds C(kubectl drain) may take (C(--timeout)); a PodDisruptionBudget that never allows the
      eviction makes it fail then. With V(uncordoned), seconds to wait for the Node to be Ready.
    type: int
    default: 300
extends_documentation_fragment:
  - vipadm.kubeadm.kubectl
seealso:
  - module: vipadm.kubeadm.node_removal_plan
  - module: vipadm.kubeadm.etcd_member
"""

EXAMPLES = r"""
- name: Drain worker3 before it leaves
  vipadm.kubeadm.cluster_node:
    name: worker3
    state: drained
  delegate_to: cp1

- name: Drain cp2 for its kubelet's upgrade, and uncordon it once it is Ready on the new kubelet
  vipadm.kubeadm.cluster_node:
    name: cp2
    state: "{{ item }}"
    reason: upgrade
    kubelet_version: 1.37.2
  loop: [drained, uncordoned]
  delegate_to: cp1
- name: Delete its Node
  vipadm.kubeadm.cluster_node:
    name: worker3
    state: absent
  delegate_to: cp1
"""

RETURN = r"""
node:
  description: The Node before the change (with V(uncordoned), once it is Ready) - C(name), C(ready),
    C(control_plane), C(unschedulable), C(kubelet_version), C(drained_for) (the O(reason) it was drained for, null
    when this module did not drain it); null when there is none.
  returned: always
  type: dict
  sample: {"name": "worker3", "ready": true, "control_plane": false, "unschedulable": false,
           "kubelet_version": "v1.37.2", "drained_for": null}
pods:
  description: With V(drained), the pods (C(namespace/name)) the drain evicts (would evict, in check mode).
  returned: always
  type: list
  elements: str
  sample: [kube-system/coredns-6c8d7f4b9d-2kq7x]
api_server:
  description: The API server C(kubectl) was pointed at.
  returned: always
  type: str
  sample: https://198.51.100.11:6443
stdout:
  description: What C(kubectl drain), C(kubectl uncordon) or C(kubectl delete node) printed.
  returned: when kubectl changed something
  type: str
"""

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _cluster as cluster
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _module_run as module_run

FILESYSTEM_ROOT = '/'


def argument_spec():
    return dict(
        name=dict(type='str', required=True),
        state=dict(type='str', choices=['drained', 'uncordoned', 'absent'], required=True),
        reason=dict(type='str'),
        kubelet_version=dict(type='str'),
        timeout=dict(type='int', default=300),
        kubeconfig=dict(type='path', default='/etc/kubernetes/admin.conf'),
        server=dict(type='str'),
        kubectl_path=dict(type='str', default='kubectl'),
    )


def main():
    module_run.main(argument_spec(), cluster.cluster_node, FILESYSTEM_ROOT, binary='kubectl_path', check_mode=True)


if __name__ == '__main__':
    main()
