#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: reset
short_description: Undo kubeadm init or join on a node, including what kubeadm reset leaves behind
version_added: 0.1.0
description:
  - Runs C(kubeadm reset -f) when files of kubeadm are on the node (kubeconfigs in C(/etc/kubernetes), the
    kubeadm static Pod manifests, C(/etc/kubernetes/pki), C(/var/lib/etcd), the kubelet configuration
    kubeadm wrote).
  - Then removes what C(kubeadm reset) does not clean, O(remove_paths) - by default the CNI configuration,
    the kube-vip manifest, the root user's C(~/.kube/config), the etcd data directory and the kubeadm
    configuration files vipadm wrote. A directory is emptied, a file is removed.
  - Then takes the VIP of the node's kube-vip manifest (env C(address), or C(vip_address) of kube-vip before
    v0.5, read before C(kubeadm reset) removes the manifest) off every interface that still holds it.
    C(kubeadm reset) ends kube-vip with SIGKILL, so the node that held the VIP would keep the address, and
    answer ARP for it, until it reboots. Needs C(ip) (iproute2) on the node's E(PATH) when the manifest names
    an address.
  - Idempotent; a node with nothing to clean reports no change and runs nothing.
  - C(kubeadm reset) does not clean iptables or IPVS rules, nor delete the Node object from the cluster.
author:
  - vipadm developers (@vipadm)
attributes:
  check_mode:
    support: full
    description: Reports what would be reset and removed; changes nothing.
  diff_mode:
    support: none
    description: Removes files rather than changing them; RV(removed) lists them.
  platform:
    support: full
    platforms: posix
    description: Runs on the node; Python standard library only.
options:
  cri_socket:
    description:
      - The CRI socket passed to C(kubeadm reset --cri-socket).
    type: str
  remove_paths:
    description:
      - Files to remove and directories to empty after C(kubeadm reset). C(~) is the home of the user running
        the module.
    type: list
    elements: path
    default:
      - /etc/cni/net.d
      - /etc/kubernetes/manifests/kube-vip.yaml
      - ~/.kube/config
      - /var/lib/etcd
      - /etc/kubernetes/vipadm
  kubeadm_path:
    description:
      - The kubeadm binary, a name looked up in E(PATH) or an absolute path. Needed only when kubeadm's files
        are present.
    type: str
    default: kubeadm
  unfinished_init_only:
    description:
      - Reset only when this node holds the files of a C(kubeadm init) that stopped half-way, so that the
        init can run again. The node's own API server is asked for the C(kubeadm-config) ConfigMap (which init
        uploads once the control plane is up) with C(super-admin.conf), or C(admin.conf) before 1.29, and the
        cluster CA.
      - Resets when the API server answers that the ConfigMap does not exist, or when no API server answers
        and init never reached its kubelet-finalize phase; and in both cases only when no node of
        O(other_nodes) holds kubeadm files.
      - Changes nothing when the ConfigMap exists (the init finished), and fails with a sentence saying what
        was found when the cluster may be real or its state cannot be told.
    type: bool
    default: false
  other_nodes:
    description:
      - With O(unfinished_init_only), the kubeadm state of every other node of the inventory, as
        M(vipadm.kubeadm.preflight_facts) reports it (C(none), C(control_plane), C(worker), C(partial)).
    type: dict
    default: {}
  api_server_timeout:
    description:
      - With O(unfinished_init_only), how many seconds to wait for the node's own API server when none answers
        and the cluster may be real (init reached kubelet-finalize), before failing. A control plane that was
        just powered on answers once its kubelet has started etcd and the API server again.
    type: int
    default: 120
seealso:
  - module: vipadm.kubeadm.init
  - module: vipadm.kubeadm.join
"""

EXAMPLES = r"""
- name: Reset the node
  vipadm.kubeadm.reset:
    cri_socket: unix:///run/containerd/containerd.sock

- name: Reset the init host only if its earlier kubeadm init stopped half-way
  vipadm.kubeadm.reset:
    unfinished_init_only: true
    other_nodes:
      cp2: none
      cp3: none
  register: half_init
"""

RETURN = r"""
removed:
  description: The paths of O(remove_paths) that held something and were removed or emptied (would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [/etc/cni/net.d, /etc/kubernetes/manifests/kube-vip.yaml]
vip_removed:
  description: The VIP addresses taken off the node's interfaces, as C(address/prefix dev interface) (would be, in
    check mode).
  returned: always
  type: list
  elements: str
  sample: [198.51.100.254/32 dev eth0]
kubeadm_reset:
  description: Whether C(kubeadm reset -f) ran (would run, in check mode).
  returned: always
  type: bool
found:
  description: The files and directories of kubeadm that made C(kubeadm reset) necessary.
  returned: always
  type: list
  elements: str
half_init:
  description: With O(unfinished_init_only), whether the node held a half-way init and was reset (would be, in check mode).
  returned: always
  type: bool
msg:
  description: With O(unfinished_init_only), what was found and what was done, in one sentence.
  returned: when O(unfinished_init_only) is true
  type: str
  sample: "An earlier kubeadm init stopped half-way: ... this node is reset and initialized again."
stdout:
  description: The output of C(kubeadm reset).
  returned: when kubeadm reset ran
  type: str
stderr:
  description: The error output of C(kubeadm reset).
  returned: when kubeadm reset ran
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm_actions as actions

FILESYSTEM_ROOT = '/'
DEFAULT_REMOVE_PATHS = ['/etc/cni/net.d', '/etc/kubernetes/manifests/kube-vip.yaml', '~/.kube/config',
                        '/var/lib/etcd', '/etc/kubernetes/vipadm']


def argument_spec():
    return dict(
        cri_socket=dict(type='str'),
        remove_paths=dict(type='list', elements='path', default=list(DEFAULT_REMOVE_PATHS)),
        kubeadm_path=dict(type='str', default='kubeadm'),
        unfinished_init_only=dict(type='bool', default=False),
        other_nodes=dict(type='dict', default={}),
        api_server_timeout=dict(type='int', default=120),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    flow = actions.reset_unfinished_init if module.params['unfinished_init_only'] else actions.reset
    actions.run_in_module(module, flow, FILESYSTEM_ROOT,
                          lambda: module.get_bin_path(module.params['kubeadm_path'], required=True),
                          module.check_mode)


if __name__ == '__main__':
    main()
