#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: join_credentials
short_description: Make fresh credentials for joining nodes to a kubeadm cluster
version_added: 0.1.0
description:
  - On an initialized control plane, creates a bootstrap token with C(kubeadm token create --ttl <ttl>
    --print-join-command) and, when O(upload_certs=true), uploads the control plane certificates again with
    C(kubeadm init phase upload-certs --upload-certs) for a fresh certificate key.
  - upload-certs is given the advertise address, port and Kubernetes version of this node's API server (from
    kubeadm's kube-apiserver manifest) in a temporary configuration file, so that it works on a node without a
    default route and never looks the version up on the internet.
  - Returns the token, the CA certificate hash, the certificate key and the API endpoint that
    M(vipadm.kubeadm.join) takes.
  - The uploaded certificates (Secret C(kube-system/kubeadm-certs)) are deleted 2 hours after the upload and
    the token expires after O(token_ttl); run this module right before the joins, never reuse older values.
  - Every run creates new credentials, so it always reports a change.
  - While the API endpoint of O(kubeconfig) does not answer (no route, connection refused, timeout), both commands
    are tried again every 3 s for up to 90 s; other failures end the module at once with kubeadm's reason.
author:
  - vipadm developers (@vipadm)
attributes:
  check_mode:
    support: full
    description:
      - Creates nothing; RV(token) and RV(certificate_key) are empty strings, RV(ca_cert_hash) and
        RV(api_endpoint) are read from O(kubeconfig).
  diff_mode:
    support: none
    description: Creates credentials in the cluster, not files on the node.
  platform:
    support: full
    platforms: posix
    description: Runs on the node; Python standard library only.
options:
  token_ttl:
    description:
      - The lifetime of the bootstrap token as a duration, for example V(15m) or V(2h). V(0) never expires.
    type: str
    default: 15m
  upload_certs:
    description:
      - Upload the control plane certificates again and return a fresh RV(certificate_key), needed to join
        control planes. With V(false), RV(certificate_key) is empty.
    type: bool
    default: true
  kubeconfig:
    description:
      - The kubeconfig kubeadm uses to talk to the cluster; its C(server) is the returned RV(api_endpoint).
    type: path
    default: /etc/kubernetes/admin.conf
  kubeadm_path:
    description:
      - The kubeadm binary, a name looked up in E(PATH) or an absolute path.
    type: str
    default: kubeadm
notes:
  - The result holds the token and the certificate key in clear, so that the join can use them. A module cannot
    hide its own result (Ansible removes internal keys such as C(_ansible_no_log) from module returns), so set
    the task keyword C(no_log) to V(true) on every task that runs this module.
seealso:
  - module: vipadm.kubeadm.init
  - module: vipadm.kubeadm.join
"""

EXAMPLES = r"""
- name: Make credentials right before joining the next control plane
  vipadm.kubeadm.join_credentials:
    token_ttl: 15m
  delegate_to: "{{ groups['control_plane'][0] }}"
  register: credentials
  no_log: true

- name: Join it
  vipadm.kubeadm.join:
    kubernetes_version: 1.32.4
    api_endpoint: "{{ credentials.api_endpoint }}"
    token: "{{ credentials.token }}"
    ca_cert_hash: "{{ credentials.ca_cert_hash }}"
    certificate_key: "{{ credentials.certificate_key }}"
    control_plane: true
"""

RETURN = r"""
token:
  description: The new bootstrap token. Empty in check mode.
  returned: always
  type: str
  sample: abcdef.0123456789abcdef
ca_cert_hash:
  description: The discovery hash of the cluster CA (C(sha256:) + 64 hex digits).
  returned: always
  type: str
  sample: sha256:2efe3a4bd7c02dfca3a12e81b6b4afe805a0801dff922812890e19477d4cc1aa
certificate_key:
  description: The key of the freshly uploaded certificates. Empty in check mode or with O(upload_certs=false).
  returned: always
  type: str
  sample: 0f192561ef8eed55a153cb308bd00351a10d54b09bfe5f056a2c797b0adb129f
ca_cert:
  description:
    - The cluster CA certificate (PEM) whose hash is RV(ca_cert_hash), for probing the VIP from a node that
      has no copy yet (M(vipadm.kubeadm.wait_for_vip)'s O(vipadm.kubeadm.wait_for_vip#module:ca_pem)). Public, not
      a secret.
  returned: always
  type: str
  sample: "-----BEGIN CERTIFICATE-----\nMIIC/jCCAeagAwIBAgIBADANBgkqhkiG9w0BAQsFADAV...\n-----END CERTIFICATE-----\n"
api_endpoint:
  description: The API endpoint (C(server) of O(kubeconfig) without C(https://)).
  returned: always
  type: str
  sample: 198.51.100.254:6443
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm_actions as actions

FILESYSTEM_ROOT = '/'


def argument_spec():
    return dict(
        token_ttl=dict(type='str', default='15m', no_log=False),
        upload_certs=dict(type='bool', default=True),
        kubeconfig=dict(type='path', default='/etc/kubernetes/admin.conf'),
        kubeadm_path=dict(type='str', default='kubeadm'),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    kubeadm_path = module.get_bin_path(module.params['kubeadm_path'], required=True)
    actions.run_in_module(module, actions.join_credentials, FILESYSTEM_ROOT, kubeadm_path, module.check_mode)


if __name__ == '__main__':
    main()
