#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: certs_renew
short_description: Renew a control plane's kubeadm certificates
version_added: 0.1.0
description:
  - Runs C(kubeadm certs renew all) on a control plane - every certificate kubeadm manages there (the API
    server's, etcd's, the front proxy client, and the client certificates in C(admin.conf),
    C(super-admin.conf), C(controller-manager.conf) and C(scheduler.conf)) gets a new one from the same CA and
    key, valid for the same period from now. The CAs and the kubelet's own certificates are not renewed.
  - The running Pods keep the old certificates until they restart (M(vipadm.kubeadm.restart_static_pods)).
  - C(kubeadm certs check-expiration) before and after tells what was renewed (RV(renewed)).
  - A renewal is always a change. With O(within_days), a node whose certificates all have that many days left or
    more is not renewed (no change), so a scheduled run renews only what is due.
author:
  - vipadm developers (@vipadm)
attributes:
  check_mode:
    support: full
    description: Reads the expiration and reports what C(kubeadm certs renew all) would renew; renews nothing.
  diff_mode:
    support: none
    description: Replaces certificates and the kubeconfigs that hold keys; RV(before) and RV(after) hold the expiration dates.
  platform:
    support: full
    platforms: posix
    description: Runs on a kubeadm control plane; Python standard library only.
options:
  within_days:
    description:
      - Renew only when a certificate (not a CA) expires in fewer than this many days. V(0) renews every time.
    type: int
    default: 0
  kubeadm_path:
    description: The kubeadm binary, a name looked up in E(PATH) or an absolute path.
    type: str
    default: kubeadm
notes:
  - Copies of C(admin.conf) made before the renewal (C(~/.kube/config)) keep working until their own certificate
    expires; copy the new one.
seealso:
  - module: vipadm.kubeadm.certs_expiration
  - module: vipadm.kubeadm.restart_static_pods
"""

EXAMPLES = r"""
- name: Renew the certificates that expire within 90 days
  vipadm.kubeadm.certs_renew:
    within_days: 90
  register: renewal

- name: Restart the static Pods so that they use them
  vipadm.kubeadm.restart_static_pods:
  when: renewal is changed
"""

RETURN = r"""
renewed:
  description: The certificates renewed (would be, in check mode), by the names C(check-expiration) prints.
  returned: always
  type: list
  elements: str
  sample: [admin.conf, apiserver, apiserver-etcd-client, apiserver-kubelet-client, controller-manager.conf]
before:
  description: The expiration report before, as M(vipadm.kubeadm.certs_expiration) returns it (C(certificates),
    C(certificate_authorities)).
  returned: always
  type: dict
after:
  description: The expiration report after the renewal (RV(before) when nothing was renewed).
  returned: always
  type: dict
soonest:
  description: The certificate that expired first before the renewal.
  returned: always
  type: str
days_left:
  description: Whole days RV(soonest) had left before the renewal.
  returned: always
  type: int
msg:
  description: What was renewed, or why not.
  returned: always
  type: str
stdout:
  description: What C(kubeadm certs renew all) printed.
  returned: when it ran
  type: str
"""

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _certs as certs
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _module_run as module_run

FILESYSTEM_ROOT = '/'


def argument_spec():
    return dict(
        within_days=dict(type='int', default=0),
        kubeadm_path=dict(type='str', default='kubeadm'),
    )


def main():
    module_run.main(argument_spec(), certs.certs_renew, FILESYSTEM_ROOT, binary='kubeadm_path', check_mode=True)


if __name__ == '__main__':
    main()
