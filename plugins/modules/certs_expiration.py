#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: certs_expiration
short_description: Report the expiration of a control plane's kubeadm certificates as facts
version_added: 0.1.0
description:
  - Runs C(kubeadm certs check-expiration -o json) on a control plane and reports, for every certificate and CA
    kubeadm manages there, its expiration date and the whole days left (counted from the date, negative once
    expired), as the fact C(kubeadm_certs) and as return values.
  - Warns for every certificate or CA present with fewer than O(warn_days) days left, saying what to do
    (certificates - the C(vipadm.kubeadm.renew_certs) playbook; CAs - kubeadm does not renew them).
  - Read-only. kubeadm reads the cluster's C(ClusterConfiguration) through C(/etc/kubernetes/admin.conf)'s server
    (the VIP) to find the certificates; when that fails it warns and uses its defaults.
author:
  - vipadm developers (@vipadm)
attributes:
  check_mode:
    support: full
    description: Runs C(kubeadm certs check-expiration), which changes nothing, in check mode too.
  diff_mode:
    support: none
    description: Reports; no file changes.
  facts:
    support: full
    description: Sets C(kubeadm_certs).
  platform:
    support: full
    platforms: posix
    description: Runs on a kubeadm control plane; Python standard library only.
options:
  warn_days:
    description: Warn for every certificate or CA with fewer days left than this.
    type: int
    default: 30
  kubeadm_path:
    description: The kubeadm binary, a name looked up in E(PATH) or an absolute path.
    type: str
    default: kubeadm
seealso:
  - module: vipadm.kubeadm.certs_renew
"""

EXAMPLES = r"""
- name: Read the certificates' expiration, warn under 60 days
  vipadm.kubeadm.certs_expiration:
    warn_days: 60

- name: Show the first one to expire
  ansible.builtin.debug:
    msg: "{{ kubeadm_certs.soonest }} expires in {{ kubeadm_certs.days_left }} days"
"""

RETURN = r"""
certificates:
  description:
    - Every certificate kubeadm manages on the node, by the name C(check-expiration) prints (C(apiserver),
      C(admin.conf), C(etcd-server), ...) - C(expires) (RFC 3339, null when missing), C(days_left) (null when
      missing), C(ca) (the CA that signs it), C(missing), C(externally_managed).
  returned: always
  type: dict
  sample: {"apiserver": {"expires": "2027-12-05T19:43:24Z", "days_left": 364, "ca": "ca", "missing": false,
           "externally_managed": false}}
certificate_authorities:
  description: The CAs, by name (C(ca), C(etcd-ca), C(front-proxy-ca)), with the same keys but C(ca).
  returned: always
  type: dict
  sample: {"ca": {"expires": "2036-12-02T19:43:24Z", "days_left": 3649, "missing": false, "externally_managed": false}}
soonest:
  description: The certificate (not CA) that expires first.
  returned: always
  type: str
  sample: admin.conf
days_left:
  description: Whole days left of RV(soonest).
  returned: always
  type: int
  sample: 364
expiring:
  description: The certificates and CAs with fewer than O(warn_days) days left, soonest first.
  returned: always
  type: list
  elements: str
  sample: []
ansible_facts:
  description: The same report as a fact.
  returned: always
  type: dict
  contains:
    kubeadm_certs:
      description: RV(certificates), RV(certificate_authorities), RV(soonest), RV(days_left) and RV(expiring).
      type: dict
      returned: always
"""

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _certs as certs
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _module_run as module_run

FILESYSTEM_ROOT = '/'


def argument_spec():
    return dict(
        warn_days=dict(type='int', default=30),
        kubeadm_path=dict(type='str', default='kubeadm'),
    )


def main():
    module_run.main(argument_spec(), certs.certs_expiration, FILESYSTEM_ROOT, binary='kubeadm_path')


if __name__ == '__main__':
    main()
