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
seealso:
  - module: ansible.builtin.wait_for
"""

EXAMPLES = r"""
- name: Wait until the API server answers through the VIP
  vipadm.kubeadm.wait_for_vip:
    address: 198.51.100.254
    ca_cert: /etc/kubernetes/pki/ca.crt
    timeout: 240
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
"""

import ssl

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vipadm.kubeadm.plugins.module_utils._vip_probe import wait_for_vip


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
    )


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
    try:
        result = wait_for_vip(params['address'], params['port'], ca_pem, params['path'],
                              timeout=0 if module.check_mode else params['timeout'],
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
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
