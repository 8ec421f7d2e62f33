#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kubeadm_upgrade
short_description: Run kubeadm upgrade apply on the first control plane, kubeadm upgrade node on the other nodes
version_added: 0.1.0
description:
  - V(apply) - C(kubeadm upgrade apply vX.Y.Z --yes) - upgrades the control plane of this node and the cluster's
    configuration, kube-proxy and CoreDNS. kubeadm of the target release must be installed on the node.
  - V(node) - C(kubeadm upgrade node) - on another control plane, upgrades its static Pods to the cluster's
    version; on a worker, writes the kubelet configuration of the new release. No change on a control plane whose
    C(kube-apiserver.yaml) runs O(version) already.
  - kubeadm's refusal (its last error line) is the failure's message; the tail of its output is in the result.
  - M(vipadm.kubeadm.upgrade_plan) says which action each node needs; the C(upgrade) role runs them in order.
author:
  - vipadm developers (@vipadm)
attributes:
  check_mode:
    support: full
    description: With V(apply) and kubeadm of the target release installed, runs C(kubeadm upgrade plan vX.Y.Z)
      (it changes nothing) and fails with its refusal; otherwise reports the change without running kubeadm.
  diff_mode:
    support: none
    description: kubeadm rewrites many files; its output is returned instead.
  platform:
    support: full
    platforms: posix
    description: Runs on a node of a kubeadm cluster.
options:
  action:
    description: V(apply) on the first control plane, V(node) on every other node.
    type: str
    choices: [apply, node]
    required: true
  version:
    description: The Kubernetes release to upgrade to, such as V(1.37.2).
    type: str
    required: true
  ignore_preflight_errors:
    description: kubeadm preflight checks whose errors are warnings (C(--ignore-preflight-errors)), such as
      V(SystemVerification) on a host with cgroup v1.
    type: list
    elements: str
    default: []
  kubeadm_path:
    description: The kubeadm binary, a name looked up in E(PATH) or an absolute path.
    type: str
    default: kubeadm
seealso:
  - module: vipadm.kubeadm.upgrade_plan
  - name: kubeadm upgrade
    description: Upgrading kubeadm clusters, in the Kubernetes documentation.
    link: https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade/
"""

EXAMPLES = r"""
- name: Upgrade the cluster's control plane to 1.37.2, on the first control plane
  vipadm.kubeadm.kubeadm_upgrade:
    action: apply
    version: 1.37.2

- name: Upgrade this node's part of the cluster
  vipadm.kubeadm.kubeadm_upgrade:
    action: node
    version: 1.37.2
"""

RETURN = r"""
action:
  description: O(action).
  returned: always
  type: str
  sample: apply
version:
  description: The release upgraded to, without a V(v).
  returned: always
  type: str
  sample: 1.37.2
skipped_because:
  description: Why nothing was run (the node runs the release already); null when kubeadm ran or would run.
  returned: always
  type: str
stdout:
  description: What kubeadm printed.
  returned: when kubeadm ran
  type: str
plan:
  description: What C(kubeadm upgrade plan) printed, in check mode with V(apply).
  returned: when kubeadm upgrade plan ran
  type: str
stdout_tail:
  description: The last lines kubeadm printed, when it failed.
  returned: failure
  type: list
  elements: str
"""

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _module_run as module_run
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _upgrade as upgrade

FILESYSTEM_ROOT = '/'


def argument_spec():
    return dict(
        action=dict(type='str', choices=['apply', 'node'], required=True),
        version=dict(type='str', required=True),
        ignore_preflight_errors=dict(type='list', elements='str', default=[]),
        kubeadm_path=dict(type='str', default='kubeadm'),
    )


def main():
    module_run.main(argument_spec(), upgrade.kubeadm_upgrade, FILESYSTEM_ROOT, binary='kubeadm_path', check_mode=True)


if __name__ == '__main__':
    main()
