#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: restart_static_pods
short_description: Restart a control plane's static Pods by moving their manifests out and back
version_added: 0.1.0
description:
  - Restarts the static Pods of a kubeadm control plane the way the kubeadm documentation does after a certificate
    renewal - their manifests leave C(/etc/kubernetes/manifests), the kubelet stops the Pods, the manifests come
    back, the kubelet starts them again - and waits at each step (the processes, named after the manifests, are
    watched in C(/proc)).
  - kube-vip (V(kube-vip) in O(pods)) goes first and comes back last - stopped by the kubelet, it releases its
    Lease and the VIP, so that another control plane holds the VIP while this node's API server restarts; it comes
    back once the API server answers again.
  - After the restart the API server must answer C(/livez) on its own address with the cluster CA and serve
    C(/etc/kubernetes/pki/apiserver.crt), and etcd must answer C(/health) and serve
    C(/etc/kubernetes/pki/etcd/server.crt) - the certificates on disk, renewed or not.
  - Before etcd stops, every etcd member is asked for its health - refused when the other members that answer
    are not a quorum without this one (the sentence names them).
  - The manifests wait in C(/etc/kubernetes/vipadm/static-pods-restarting) meanwhile; a run that was stopped
    half-way leaves them there, and the next run puts them back first (RV(resumed)). A step that times out puts
    every manifest back before it fails.
  - Always a change (unless none of O(pods) is on the node).
  - With O(state=stopped), the Pods are only stopped, their manifests left out.
author:
  - vipadm developers (@vipadm)
attributes:
  check_mode:
    support: full
    description: Checks etcd's quorum and reports the Pods that would restart; moves nothing.
  diff_mode:
    support: none
    description: Moves files and back; nothing differs afterwards.
  platform:
    support: full
    platforms: posix
    description: Runs on a kubeadm control plane; Python standard library only.
options:
  pods:
    description:
      - The static Pods to restart, by manifest name (C(<name>.yaml) in C(/etc/kubernetes/manifests)). kubeadm's
        must be there; V(kube-vip) is skipped on a node without it.
    type: list
    elements: str
    default: [etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kube-vip]
  state:
    description:
      - V(restarted) - out, stopped, back, running and answering.
      - V(stopped) - out and stopped, and left out (in C(/etc/kubernetes/vipadm/static-pods-restarting), which
        M(vipadm.kubeadm.reset) empties; a later V(restarted) puts them back). Before a control plane is reset, this
        stops its kube-vip gracefully, so that it hands the VIP over (C(kubeadm reset) ends it with SIGKILL - the
        VIP then waits for the Lease to expire). No change when none of O(pods) is in the manifest directory.
    type: str
    choices: [restarted, stopped]
    default: restarted
  timeout:
    description: Seconds each step may take (the kubelet stops the Pods; starts them; they answer).
    type: int
    default: 300
seealso:
  - module: vipadm.kubeadm.certs_renew
"""

EXAMPLES = r"""
- name: Restart the control plane's static Pods, so that they use the renewed certificates
  vipadm.kubeadm.restart_static_pods:

- name: Restart only the scheduler
  vipadm.kubeadm.restart_static_pods:
    pods: [kube-scheduler]

- name: Stop kube-vip before kubeadm reset, so that it hands the VIP to another control plane
  vipadm.kubeadm.restart_static_pods:
    pods: [kube-vip]
    state: stopped
"""

RETURN = r"""
pods:
  description: The Pods restarted (would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kube-vip]
restarted:
  description: Per Pod, the process IDs of its program before and after the restart.
  returned: always
  type: dict
  sample: {"kube-apiserver": {"before": [1234], "after": [2345]}}
resumed:
  description: Manifests an earlier, stopped run had left out, put back by this run.
  returned: always
  type: list
  elements: str
checks:
  description: Per Pod checked after the restart (C(kube-apiserver), C(etcd)), what was found.
  returned: always
  type: dict
  sample: {"kube-apiserver": "198.51.100.11:6443 serves /etc/kubernetes/pki/apiserver.crt; /livez: GET /livez returned 200"}
elapsed:
  description: Seconds the restart took.
  returned: always
  type: float
  sample: 24.6
"""

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _module_run as module_run
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _static_pods as static_pods

FILESYSTEM_ROOT = '/'


def argument_spec():
    return dict(
        pods=dict(type='list', elements='str', default=list(static_pods.DEFAULT_PODS)),
        state=dict(type='str', choices=['restarted', 'stopped'], default='restarted'),
        timeout=dict(type='int', default=300),
    )


def restart(params, root, run, check_mode):
    """The restart runs no command: ``run`` is not used."""
    return static_pods.restart(params, root, check_mode)


def main():
    module_run.main(argument_spec(), restart, FILESYSTEM_ROOT, check_mode=True)


if __name__ == '__main__':
    main()
