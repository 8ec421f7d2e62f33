#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: wait_for_vip
short_description: Wait until the Kubernetes API server answers through the VIP
version_added: 0.1.0
description:
  - Probes O(address) and O(port) in three stages until all pass - a TCP connection, a TLS handshake verified
    against the cluster CA with O(address) as the name checked (an IP address must be among the certificate's
    IP SANs), and C(GET) O(path) answered with HTTP 200.
  - On timeout it fails with the last stage reached and why - no answer (no ARP answer or route for the VIP),
    no route to host, connection refused, TLS failure (CA unknown, certificate not valid for the VIP) or the
    HTTP status - so that the message shows where the path to the VIP breaks.
  - Uses the Python standard library only.
author:
  - vipadm developers (@vipadm)
attributes:
  check_mode:
    support: partial
    description: Probes once and reports the result without failing.
    details: In a dry run the VIP may not exist yet, so check mode probes once, never waits and never fails.
  diff_mode:
    support: none
    description: Changes nothing on the node.
  platform:
    support: full
    platforms: posix
    description: Runs on the node; Python standard library only.
options:
  address:
    description:
      - The VIP (or host name) to probe.
    type: str
    required: true
  port:
    description:
      - The API server port behind the VIP.
    type: int
    default: 6443
  ca_cert:
    description:
      - Path of the cluster CA certificate (PEM) on the host that runs the module, for example
        V(/etc/kubernetes/pki/ca.crt).
      - One of O(ca_cert) and O(ca_pem) is required.
    type: path
  ca_pem:
    description:
      - The cluster CA certificate as PEM text.
    type: str
  path:
    description:
      - The HTTP path that must answer 200, for example V(/livez) or V(/readyz).
    type: str
    default: /livez
  timeout:
    description:
      - Seconds to wait in total before failing.
    type: int
    default: 300
  delay:
    description:
      - Seconds to wait before the first probe.
    type: int
    default: 0
  sleep:
    description:
      - Seconds between probes; fractions allowed (for example V(0.2) to time a failover closely).
    type: float
    default: 2
  after_kube_vip_restart:
    description:
      - Wait first until the kubelet has replaced this node's kube-vip after its manifest changed, then probe.
      - The kubelet notices a changed static Pod manifest a moment after it is written; until then the old
        kube-vip may still hold the VIP, so a probe passes and the next request finds the VIP gone while the
        new kube-vip starts.
      - Done when the VIP is not on this node (dropped by the stopping kube-vip, or held by another node; the
        probe then waits for it), or when kube-vip's Lease was taken after the manifest's modification time.
        The Lease is read through the VIP with the client certificate of O(after_kube_vip_restart.kubeconfig).
      - For kube-vip in ARP mode with leader election (the Lease names are returned by
        M(vipadm.kubeadm.kube_vip_manifest) as RV(vipadm.kubeadm.kube_vip_manifest#module:leader_lease)). Counts
        against O(timeout).
    type: dict
    suboptions:
      manifest:
        description: The kube-vip static Pod manifest that changed.
        type: path
        default: /etc/kubernetes/manifests/kube-vip.yaml
      kubeconfig:
        description: A kubeconfig with an embedded client certificate allowed to read the Lease.
        type: path
        default: /etc/kubernetes/admin.conf
      lease_namespace:
        description: Namespace of kube-vip's control plane Lease.
        type: str
        default: kube-system
      lease_name:
        description: Name of kube-vip's control plane Lease.
        type: str
        default: plndr-cp-lock
seealso:
  - module: ansible.builtin.wait_for
"""

EXAMPLES = r"""
- name: Wait until the API server answers through the VIP
  vipadm.kubeadm.wait_for_vip:
    address: 198.51.100.254
    ca_cert: /etc/kubernetes/pki/ca.crt
    timeout: 240

- name: After changing this node's kube-vip manifest, wait for the new kube-vip, then for the VIP
  vipadm.kubeadm.wait_for_vip:
    address: 198.51.100.254
    ca_cert: /etc/kubernetes/pki/ca.crt
    sleep: 0.5
    after_kube_vip_restart:
      manifest: /etc/kubernetes/manifests/kube-vip.yaml
"""

RETURN = r"""
elapsed:
  description: Seconds spent probing.
  returned: always
  type: float
  sample: 3.52
attempts:
  description: Number of probes made.
  returned: always
  type: int
  sample: 2
stage:
  description:
    - The stage the last probe reached - V(tcp), V(tls) or V(http) where it failed, V(ready) when the server
      answered 200.
  returned: always
  type: str
  sample: ready
status:
  description: The HTTP status of the last probe that got an answer.
  returned: when an HTTP answer came
  type: int
  sample: 200
reason:
  description: What the last probe found, in words.
  returned: always
  type: str
  sample: GET /livez returned 200
kube_vip_restart:
  description: What the wait for the new kube-vip found, before the probes.
  returned: when O(after_kube_vip_restart) is set, outside check mode
  type: dict
  contains:
    restarted:
      description: Whether the kube-vip that held the VIP when the manifest changed was replaced.
      type: bool
    reason:
      description: What was found, in words.
      type: str
    elapsed:
      description: Seconds spent waiting for it.
      type: float
  sample: {"restarted": true, "reason": "the VIP is not on this node", "elapsed": 0.41}
"""

import os
import ssl
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vipadm.kubeadm.plugins.module_utils._kubeadm_state import kubeconfig_client
from ansible_collections.vipadm.kubeadm.plugins.module_utils._vip_probe import (
    client_tls_context,
    get_json,
    lease_path,
    wait_for_kube_vip_restart,
    wait_for_vip,
)


def argument_spec():
    return dict(
        address=dict(type='str', required=True),
        port=dict(type='int', default=6443),
        ca_cert=dict(type='path'),
        ca_pem=dict(type='str'),
        path=dict(type='str', default='/livez'),
        timeout=dict(type='int', default=300),
        delay=dict(type='int', default=0),
        sleep=dict(type='float', default=2),
        after_kube_vip_restart=dict(type='dict', options=dict(
            manifest=dict(type='path', default='/etc/kubernetes/manifests/kube-vip.yaml'),
            kubeconfig=dict(type='path', default='/etc/kubernetes/admin.conf'),
            lease_namespace=dict(type='str', default='kube-system'),
            lease_name=dict(type='str', default='plndr-cp-lock'),
        )),
    )


def _wait_for_restart(module, ca_pem):
    """The kube_vip_restart result, or fail_json when the inputs cannot be read."""
    params = module.params
    restart = params['after_kube_vip_restart']
    try:
        changed_at = os.stat(restart['manifest']).st_mtime
    except OSError as exc:
        module.fail_json(msg='Cannot read the modification time of the kube-vip manifest %s (%s): give the path '
                             'of the manifest that was changed, e.g. /etc/kubernetes/manifests/kube-vip.yaml.'
                         % (restart['manifest'], exc))
    try:
        with open(restart['kubeconfig'], 'r', encoding='utf-8') as handle:
            credentials = kubeconfig_client(handle.read())
        if credentials is None:
            raise ValueError('it has no client-certificate-data and client-key-data (kubeadm writes both into '
                             'admin.conf)')
        context = client_tls_context(ca_pem, *credentials)
    except (OSError, ValueError, ssl.SSLError) as exc:
        module.fail_json(msg='Cannot use %s and the CA to read kube-vip\'s Lease (%s): give a kubeconfig with an '
                             'embedded client certificate and key, e.g. /etc/kubernetes/admin.conf, and the cluster CA.'
                         % (restart['kubeconfig'], exc))
    path = lease_path(restart['lease_namespace'], restart['lease_name'])
    return wait_for_kube_vip_restart(
        params['address'], changed_at, lambda: get_json(params['address'], params['port'], context, path),
        timeout=params['timeout'], sleep=min(params['sleep'], 0.2))


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_one_of=[('ca_cert', 'ca_pem')], mutually_exclusive=[('ca_cert', 'ca_pem')])
    params = module.params
    ca_pem = params['ca_pem']
    if params['ca_cert']:
        try:
            with open(params['ca_cert'], 'r', encoding='ascii') as handle:
                ca_pem = handle.read()
        except (IOError, OSError, UnicodeDecodeError) as exc:
            module.fail_json(msg='Cannot read the CA certificate %s (%s): give the path of the cluster CA in PEM, '
                                 'e.g. /etc/kubernetes/pki/ca.crt.' % (params['ca_cert'], exc))
    if not params['path'].startswith('/'):
        module.fail_json(msg='path %r must start with "/", e.g. /livez.' % params['path'])
    started = time.monotonic()
    restart = None
    if params['after_kube_vip_restart'] and not module.check_mode:
        restart = _wait_for_restart(module, ca_pem)
        if not restart['restarted']:
            module.fail_json(msg='kube-vip on this node was not replaced within %ss after its manifest %s changed: '
                                 '%s. Check the kubelet (journalctl -u kubelet) and the kube-vip container.'
                             % (params['timeout'], params['after_kube_vip_restart']['manifest'], restart['reason']),
                             kube_vip_restart=restart)
    try:
        result = wait_for_vip(params['address'], params['port'], ca_pem, params['path'],
                              timeout=0 if module.check_mode else max(1.0, params['timeout'] - (time.monotonic() - started)),
                              delay=0 if module.check_mode else params['delay'], sleep=params['sleep'],
                              max_attempts=1 if module.check_mode else None)
    except ssl.SSLError as exc:
        module.fail_json(msg='The CA certificate is not a PEM certificate Python can load (%s): give the cluster '
                             'CA, e.g. /etc/kubernetes/pki/ca.crt.' % exc)
    ready = result.pop('ready')
    if result['status'] is None:
        del result['status']
    if not ready and not module.check_mode:
        module.fail_json(msg='%s:%d did not answer %s with 200 within %ss (%d attempts); last stage %s: %s.' % (
            params['address'], params['port'], params['path'], params['timeout'], result['attempts'],
            result['stage'], result['reason']), **result)
    if restart is not None:
        result['kube_vip_restart'] = restart
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
