#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: node_removal_plan
short_description: Decide how a node leaves a kubeadm cluster, or refuse, changing nothing
version_added: 0.1.0
description:
  - Runs on a control plane of the cluster (not the node that leaves). Reads the Nodes with C(kubectl) through
    this control plane's own API server (the address and port of its C(kube-apiserver.yaml), with
    O(kubeconfig)), etcd's members through this control plane's etcd (its v3 JSON gateway on
    C(https://localhost:2379), with kubeadm's C(apiserver-etcd-client) certificate) and asks each member
    for its health.
  - Returns the actions that remove O(node), in order - C(drain), C(reset), C(remove_etcd_member),
    C(delete_node) - and one sentence per step (RV(steps)). The playbook C(vipadm.kubeadm.remove_node) runs
    them.
  - A node that answers (O(reachable)) and is Ready is drained; one that holds kubeadm files is reset
    (C(kubeadm reset) removes its own etcd member); an etcd member that is left is removed from this control
    plane (a node that does not answer); the Node is deleted.
  - Fails with a sentence, before anything changes, when O(node) is the last control plane, when etcd has no
    quorum, when removing its member would leave fewer answering members than the smaller cluster's quorum
    (the sentence gives the member count and what to do), and when the node holds the files of another cluster.
  - A node with no Node, no etcd member and no kubeadm files is not part of the cluster - RV(actions) is empty,
    for example on a re-run after the removal.
author:
  - vipadm developers (@vipadm)
attributes:
  check_mode:
    support: full
    description: Reads etcd and the Nodes in check mode too, so that a check run prints the plan or the refusal.
  diff_mode:
    support: none
    description: A plan; nothing changes.
  platform:
    support: full
    platforms: posix
    description: Runs on a kubeadm control plane with a stacked etcd and C(kubectl); Python standard library only.
options:
  node:
    description: The name of the Node and of the etcd member to remove (kubeadm names both after the node's hostname).
    type: str
    required: true
  host:
    description: The inventory name of the node, for the messages; O(node) when empty.
    type: str
  reachable:
    description: Whether the node answered (Ansible reached it). A node that does not answer is neither drained nor reset.
    type: bool
    required: true
  node_state:
    description:
      - What the node's kubeadm files say, as M(vipadm.kubeadm.preflight_facts) reports it in C(cluster_state).
        Leave it out for a node that does not answer.
    type: str
    choices: [none, control_plane, worker, partial]
  node_ca_cert:
    description:
      - The node's C(/etc/kubernetes/pki/ca.crt) (PEM), empty when it has none. A CA that is not this control
        plane's means another cluster, which is refused.
    type: str
    default: ""
  via:
    description: The name of this control plane, for the messages.
    type: str
  kubeconfig:
    description: The kubeconfig C(kubectl) uses; its server is replaced by this control plane's own API server.
    type: path
    default: /etc/kubernetes/admin.conf
  kubectl_path:
    description: The kubectl binary, a name looked up in E(PATH) or an absolute path.
    type: str
    default: kubectl
  etcd_timeout:
    description: Seconds each etcd member has to answer its health check; one that does not counts as down.
    type: float
    default: 2.0
notes:
  - Quorum counts voting members only; a learner (a member added by a join that has not been promoted yet) can be
    removed without changing it.
seealso:
  - module: vipadm.kubeadm.etcd_member
  - module: vipadm.kubeadm.cluster_node
  - module: vipadm.kubeadm.reset
"""

EXAMPLES = r"""
- name: Plan the removal of cp3, which no longer answers
  vipadm.kubeadm.node_removal_plan:
    node: cp3
    reachable: false
    via: cp1
  delegate_to: cp1
  register: removal
"""

RETURN = r"""
actions:
  description: What removes the node, in order; empty when it is not part of the cluster.
  returned: always
  type: list
  elements: str
  sample: [drain, reset, remove_etcd_member, delete_node]
steps:
  description: One sentence per step, what will be done and where.
  returned: always
  type: list
  elements: str
  sample: ["drain Node cp3 (kubectl drain on cp1: cordon, evict its pods)", "delete Node cp3 (kubectl on cp1)"]
control_plane:
  description: Whether the node is a control plane (an etcd member, a Node labelled as one, or control plane files).
  returned: always
  type: bool
member:
  description: The node's etcd member (C(name), C(id), C(peer_urls), C(learner), C(healthy)); null when it has none.
  returned: always
  type: dict
node:
  description: The node's Node (C(name), C(ready), C(control_plane), C(unschedulable)); null when there is none.
  returned: always
  type: dict
etcd_members:
  description: Every etcd member, with its health.
  returned: always
  type: list
  elements: dict
nodes:
  description: Every Node (C(name), C(ready), C(control_plane), C(unschedulable)).
  returned: always
  type: list
  elements: dict
api_server:
  description: The API server C(kubectl) was pointed at.
  returned: always
  type: str
  sample: https://198.51.100.11:6443
"""

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _cluster as cluster
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _module_run as module_run

FILESYSTEM_ROOT = '/'


def argument_spec():
    return dict(
        node=dict(type='str', required=True),
        host=dict(type='str'),
        reachable=dict(type='bool', required=True),
        node_state=dict(type='str', choices=['none', 'control_plane', 'worker', 'partial']),
        node_ca_cert=dict(type='str', default=''),
        via=dict(type='str'),
        kubeconfig=dict(type='path', default='/etc/kubernetes/admin.conf'),
        kubectl_path=dict(type='str', default='kubectl'),
        etcd_timeout=dict(type='float', default=2.0),
    )


def main():
    module_run.main(argument_spec(), cluster.removal_plan, FILESYSTEM_ROOT, binary='kubectl_path')


if __name__ == '__main__':
    main()
