#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: join
short_description: Join a node to a kubeadm cluster as a control plane or a worker
version_added: 0.1.0
description:
  - Writes a C(JoinConfiguration) (C(kubeadm.k8s.io/v1beta3) below Kubernetes 1.31, C(v1beta4) from 1.31)
    with the bootstrap token discovery and, for a control plane, the certificate key, and runs
    C(kubeadm join --config <file>).
  - Idempotent. A node whose C(/etc/kubernetes/kubelet.conf) belongs to this cluster (its CA hash is in
    O(ca_cert_hash)) and, for a control plane, that has the C(etcd) and C(kube-apiserver) static Pod manifests,
    is already joined; nothing runs.
  - A node joined to another cluster, or holding the files of a join that did not finish, is refused with a
    sentence saying what was found; run the reset playbook on it first.
  - Known kubeadm failures become one sentence each - endpoint not answering, token unknown or expired,
    CA hash mismatch, certificate key expired or wrong, node already part of a cluster, other preflight errors,
    and a join that got past discovery but ran out of time waiting for what it started on this node (named by
    phase, with O(timeouts) as what to raise on slow machines).
    The full output is in RV(stdout) and RV(stderr), the kind in RV(failure).
  - Supports Kubernetes 1.29 to 1.37.
author:
  - vipadm developers (@vipadm)
attributes:
  check_mode:
    support: full
    description:
      - Reports whether the node would join; writes and runs nothing.
      - In check mode O(token), O(ca_cert_hash) and O(certificate_key) may be empty (what
        M(vipadm.kubeadm.join_credentials) returns in check mode, or nothing before the cluster exists);
        the join is then previewed from the node's files alone.
      - Without a CA hash the preview cannot tell this cluster from another one, so a node joined to any
        cluster is reported unchanged; the real run checks the hash.
  diff_mode:
    support: full
    description: Shows the configuration file with the token and the certificate key hidden.
  platform:
    support: full
    platforms: posix
    description: Runs on the node; Python standard library only.
options:
  api_endpoint:
    description:
      - The control plane endpoint as C(HOST:PORT), normally the VIP, as M(vipadm.kubeadm.join_credentials) returns it.
    type: str
    required: true
  token:
    description:
      - The bootstrap token.
    type: str
    required: true
  ca_cert_hash:
    description:
      - The discovery hash(es) of the cluster CA, C(sha256:) + 64 hex digits.
    type: list
    elements: str
    required: true
  control_plane:
    description:
      - Join as a control plane (stacked etcd) rather than as a worker.
    type: bool
    default: false
  certificate_key:
    description:
      - The key of the uploaded control plane certificates; required when O(control_plane=true).
    type: str
  kubernetes_version:
    description:
      - The Kubernetes release of the cluster, for example V(1.32.4). Selects the kubeadm configuration API.
    type: str
    required: true
  advertise_address:
    description:
      - The address this control plane's API server advertises; ignored for workers.
    type: str
  bind_port:
    description:
      - The port this control plane's API server listens on; ignored for workers.
    type: int
    default: 6443
  node_name:
    description:
      - The Node name; kubeadm uses the host name when omitted.
    type: str
  cri_socket:
    description:
      - The CRI socket (C(nodeRegistration.criSocket)).
    type: str
  ignore_preflight_errors:
    description:
      - Names of preflight checks whose errors become warnings.
    type: list
    elements: str
    default: []
  config_path:
    description:
      - Where the kubeadm configuration file is written (mode 0600, directory 0700) for C(kubeadm join).
      - It holds the token and the certificate key, so it is removed as soon as C(kubeadm join) has run,
        whether the join succeeded or failed; no secret stays on the node.
    type: path
    default: /etc/kubernetes/vipadm/kubeadm-join.yaml
  kubeadm_path:
    description:
      - The kubeadm binary, a name looked up in E(PATH) or an absolute path.
    type: str
    default: kubeadm
extends_documentation_fragment:
  - vipadm.kubeadm.kubelet
  - vipadm.kubeadm.timeouts
notes:
  - Join control planes one at a time (play keyword C(serial) set to 1), each with credentials made right before it.
seealso:
  - module: vipadm.kubeadm.join_credentials
  - module: vipadm.kubeadm.reset
"""

EXAMPLES = r"""
- name: Join a worker
  vipadm.kubeadm.join:
    kubernetes_version: 1.32.4
    api_endpoint: 198.51.100.254:6443
    token: "{{ credentials.token }}"
    ca_cert_hash: "{{ credentials.ca_cert_hash }}"
"""

RETURN = r"""
kubelet_enabled:
  description: Whether this run enabled the kubelet unit (or would have, in check mode); see O(enable_kubelet).
  returned: always
  type: bool
  sample: true
node_name:
  description: The Node name (O(node_name), or this host's name).
  returned: always
  type: str
  sample: cp2
control_plane:
  description: Whether the node joined as a control plane.
  returned: always
  type: bool
config_path:
  description: The file the configuration was written to (removed again after C(kubeadm join) ran).
  returned: always
  type: str
stdout:
  description: The output of C(kubeadm join) when it ran.
  returned: when kubeadm join ran
  type: str
stderr:
  description: The error output of C(kubeadm join) when it ran.
  returned: when kubeadm join ran
  type: str
failure:
  description:
    - The kind of failure - V(endpoint_unreachable), V(token_invalid), V(ca_hash_mismatch),
      V(certificate_key_expired), V(certificate_key_invalid), V(no_control_plane_endpoint), V(already_joined),
      V(node_timeout), V(preflight) or V(failed).
  returned: when kubeadm join failed
  type: str
  sample: token_invalid
"""

import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm as kubeadm
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm_actions as actions

FILESYSTEM_ROOT = '/'


def argument_spec():
    return dict(
        api_endpoint=dict(type='str', required=True),
        token=dict(type='str', required=True, no_log=True),
        ca_cert_hash=dict(type='list', elements='str', required=True),
        control_plane=dict(type='bool', default=False),
        certificate_key=dict(type='str', no_log=True),
        kubernetes_version=dict(type='str', required=True),
        advertise_address=dict(type='str'),
        bind_port=dict(type='int', default=6443),
        node_name=dict(type='str'),
        node_ip=dict(type='list', elements='str', default=[]),
        cri_socket=dict(type='str'),
        ignore_preflight_errors=dict(type='list', elements='str', default=[]),
        config_path=dict(type='path', default='/etc/kubernetes/vipadm/kubeadm-join.yaml'),
        kubeadm_path=dict(type='str', default='kubeadm'),
        enable_kubelet=dict(type='bool', default=False),
        timeouts=dict(type='dict', options={name: dict(type='str') for name in kubeadm.TIMEOUT_FIELDS}),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    kubeadm_path = module.get_bin_path(module.params['kubeadm_path'], required=True)
    systemctl_path = module.get_bin_path('systemctl', required=True) if module.params['enable_kubelet'] else None
    actions.run_in_module(module, actions.join, FILESYSTEM_ROOT, kubeadm_path, socket.gethostname().lower(),
                          module.check_mode, module._diff, systemctl_path=systemctl_path)


if __name__ == '__main__':
    main()
