#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: etcd_member
short_description: Remove a member from the stacked etcd of a kubeadm cluster
version_added: 0.1.0
description:
  - Runs on a control plane whose etcd answers. Lists etcd's members through this control plane's etcd (its
    v3 JSON gateway on C(https://localhost:2379), with the etcd CA and kubeadm's C(apiserver-etcd-client)
    certificate, as C(kubeadm reset) does) and removes the member named O(name) when there is one.
  - For a control plane that is gone for good (it no longer answers, so C(kubeadm reset) cannot remove its own
    member). A node that answers is better removed by C(kubeadm reset) on it (M(vipadm.kubeadm.reset)).
  - Before the removal, asks every member for its health and refuses, with a sentence, to remove the last
    member, to change a cluster that has no quorum, or to leave fewer answering members than the smaller
    cluster's quorum.
  - Idempotent - no member of that name, no change.
author:
  - vipadm developers (@vipadm)
attributes:
  check_mode:
    support: full
    description: Reports the member that would be removed, after the same checks; removes nothing.
  diff_mode:
    support: none
    description: Changes etcd's membership, not a file.
  platform:
    support: full
    platforms: posix
    description: Runs on a kubeadm control plane with a stacked etcd; Python standard library only.
options:
  name:
    description: The member's name (kubeadm names it after the node's hostname).
    type: str
    required: true
  state:
    description: Only V(absent) - members are added by C(kubeadm join --control-plane) (M(vipadm.kubeadm.join)).
    type: str
    choices: [absent]
    default: absent
  timeout:
    description: Seconds each member has to answer its health check; one that does not counts as down.
    type: float
    default: 2.0
notes:
  - Never run it against the member of the control plane it runs on.
seealso:
  - module: vipadm.kubeadm.node_removal_plan
  - module: vipadm.kubeadm.cluster_node
"""

EXAMPLES = r"""
- name: Remove the etcd member of cp3, which was powered off for good
  vipadm.kubeadm.etcd_member:
    name: cp3
    state: absent
  delegate_to: cp1
"""

RETURN = r"""
removed:
  description: The member removed (would be, in check mode) - C(name), C(id), C(peer_urls), C(learner), C(healthy); null when there was none.
  returned: always
  type: dict
  sample: {"name": "cp3", "id": "4302318537651289106", "peer_urls": ["https://198.51.100.13:2380"], "learner": false, "healthy": false}
members:
  description: The names of the members left (that would be left, in check mode).
  returned: always
  type: list
  elements: str
  sample: [cp1, cp2]
"""

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _cluster as cluster
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _module_run as module_run

FILESYSTEM_ROOT = '/'


def argument_spec():
    return dict(
        name=dict(type='str', required=True),
        state=dict(type='str', choices=['absent'], default='absent'),
        timeout=dict(type='float', default=2.0),
    )


def main():
    module_run.main(argument_spec(), cluster.etcd_member_absent, FILESYSTEM_ROOT, check_mode=True)


if __name__ == '__main__':
    main()
