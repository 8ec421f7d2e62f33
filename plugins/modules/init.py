#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: init
short_description: Initialize the first control plane of a Kubernetes cluster with kubeadm
version_added: 0.1.0
description:
  - Writes a kubeadm configuration file (C(InitConfiguration), C(ClusterConfiguration), a
    C(KubeletConfiguration) when O(cgroup_driver) or O(kubelet_config) is given and a C(KubeProxyConfiguration)
    when O(kube_proxy_config) is given) and runs C(kubeadm init --config <file> --upload-certs).
  - The configuration uses C(kubeadm.k8s.io/v1beta3) below Kubernetes 1.31 and C(kubeadm.k8s.io/v1beta4)
    from 1.31; O(extra_args) are written in the shape of that API (a map, or a list of name/value pairs).
  - The host of O(control_plane_endpoint) (the VIP) is always among the API server certificate SANs.
  - Idempotent. A node whose C(/etc/kubernetes/manifests/kube-apiserver.yaml), C(/etc/kubernetes/pki/ca.crt)
    and C(/etc/kubernetes/admin.conf) pointing at O(control_plane_endpoint) exist is already initialized;
    the module then runs no init, runs nothing on the cluster, reports no change and returns no join
    credentials (empty RV(token) and RV(certificate_key)); make them with M(vipadm.kubeadm.join_credentials).
  - A node that belongs to a cluster at another endpoint, or holds files of an init or join that did not
    finish, is refused with a message naming what was found; run the reset playbook on it first.
  - When C(kubeadm init) fails, the message names the failed phase and kubeadm's error in one sentence;
    the full output is in RV(stdout) and RV(stderr).
  - Supports Kubernetes 1.29 to 1.37.
author:
  - vipadm developers (@vipadm)
attributes:
  check_mode:
    support: full
    description: Reports the change and returns the configuration; runs nothing but C(kubeadm version).
  diff_mode:
    support: full
    description: Shows the configuration file.
  platform:
    support: full
    platforms: posix
    description: Runs on the node; Python standard library only.
options:
  kubernetes_version:
    description:
      - The Kubernetes release to deploy, for example V(1.32.4). Selects the kubeadm configuration API.
    type: str
    required: true
  control_plane_endpoint:
    description:
      - The stable address of the control plane as C(HOST:PORT), normally the VIP and port, for example
        V(198.51.100.254:6443).
    type: str
    required: true
  advertise_address:
    description:
      - The address this API server advertises (C(localAPIEndpoint.advertiseAddress)); kubeadm picks the
        default-route address when omitted.
    type: str
  bind_port:
    description:
      - The port this API server listens on (C(localAPIEndpoint.bindPort)).
    type: int
    default: 6443
  node_name:
    description:
      - The Node name (C(nodeRegistration.name)); kubeadm uses the host name when omitted.
    type: str
  cri_socket:
    description:
      - The CRI socket (C(nodeRegistration.criSocket)), for example V(unix:///run/containerd/containerd.sock).
    type: str
  pod_subnet:
    description:
      - The Pod network CIDR (C(networking.podSubnet)).
    type: str
  service_subnet:
    description:
      - The Service network CIDR (C(networking.serviceSubnet)); kubeadm defaults to V(10.96.0.0/12).
    type: str
  cert_sans:
    description:
      - Extra names and addresses for the API server certificate. The host of O(control_plane_endpoint) is
        always added first.
    type: list
    elements: str
    default: []
  extra_args:
    description:
      - Extra command-line flags per component, each a map of flag name to value (without leading dashes).
      - With C(v1beta4) (Kubernetes 1.31+) a value may be a list to repeat a flag.
    type: dict
    suboptions:
      api_server:
        description: Flags of kube-apiserver (C(apiServer.extraArgs)).
        type: dict
      controller_manager:
        description: Flags of kube-controller-manager (C(controllerManager.extraArgs)).
        type: dict
      scheduler:
        description: Flags of kube-scheduler (C(scheduler.extraArgs)).
        type: dict
      etcd:
        description: Flags of the local etcd (C(etcd.local.extraArgs)).
        type: dict
      kubelet:
        description: Flags of this node's kubelet (C(nodeRegistration.kubeletExtraArgs)).
        type: dict
  cgroup_driver:
    description:
      - The cgroup driver of the container runtime, written as the C(cgroupDriver) of the C(KubeletConfiguration);
        the kubelet and the runtime must use the same one. kubeadm's default (V(systemd)) when omitted.
      - V(cgroupfs) where the nodes do not run systemd as PID 1. The C(vipadm.kubeadm.node_prep) role writes
        containerd's driver from the same variable, C(vipadm_cgroup_driver), as the control_plane role passes here.
      - A C(cgroupDriver) in O(kubelet_config) that differs is refused before anything runs.
    type: str
    choices: [systemd, cgroupfs]
  kubelet_config:
    description:
      - Fields of a C(KubeletConfiguration) (C(kubelet.config.k8s.io/v1beta1)) appended to the configuration;
        kubeadm uploads it for every node of the cluster. Fields are passed as given, for example
        C(failCgroupV1) (V(false) on cgroup v1 hosts from Kubernetes 1.35).
    type: dict
  kube_proxy_config:
    description:
      - Fields of a C(KubeProxyConfiguration) (C(kubeproxy.config.k8s.io/v1alpha1)) appended to the configuration;
        kubeadm uploads it for the kube-proxy of every node. For example C(mode) set to V(ipvs), or
        C(conntrack.maxPerCore) set to V(0) where the nodes may not write the machine-wide C(nf_conntrack_max)
        (in containers).
    type: dict
  skip_phases:
    description:
      - kubeadm init phases to skip (C(skipPhases)), for example V(addon/kube-proxy).
    type: list
    elements: str
    default: []
  ignore_preflight_errors:
    description:
      - Names of preflight checks whose errors become warnings (C(nodeRegistration.ignorePreflightErrors)).
    type: list
    elements: str
    default: []
  image_repository:
    description:
      - The registry of the control plane images (C(imageRepository)); kubeadm defaults to V(registry.k8s.io).
    type: str
  config_path:
    description:
      - Where the kubeadm configuration file is written (mode 0600, directory 0700).
      - It holds no secret (no bootstrap token, no certificate key; C(kubeadm init) makes both itself), so it
        stays, as the record of how the cluster was initialized.
    type: path
    default: /etc/kubernetes/vipadm/kubeadm-init.yaml
  kubeadm_path:
    description:
      - The kubeadm binary, a name looked up in E(PATH) or an absolute path.
    type: str
    default: kubeadm
extends_documentation_fragment:
  - vipadm.kubeadm.kubelet
  - vipadm.kubeadm.timeouts
notes:
  - The result holds the bootstrap token and the certificate key in clear, so that later tasks can use them.
    A module cannot hide its own result (Ansible removes internal keys such as C(_ansible_no_log) from module
    returns), so set the task keyword C(no_log) to V(true) on every task that runs this module.
  - The token and the certificate key expire (24 hours, 2 hours). Join with credentials made right before
    the join by M(vipadm.kubeadm.join_credentials).
seealso:
  - module: vipadm.kubeadm.join_credentials
  - module: vipadm.kubeadm.join
  - module: vipadm.kubeadm.wait_for_vip
  - module: vipadm.kubeadm.reset
"""

EXAMPLES = r"""
- name: Initialize the first control plane behind the VIP
  vipadm.kubeadm.init:
    kubernetes_version: 1.32.4
    control_plane_endpoint: 198.51.100.254:6443
    advertise_address: 198.51.100.11
    pod_subnet: 10.244.0.0/16
    extra_args:
      api_server:
        audit-log-maxage: 30
    cgroup_driver: cgroupfs
    kubelet_config:
      failCgroupV1: false
    kube_proxy_config:
      conntrack:
        maxPerCore: 0
  register: cluster
  no_log: true
"""

RETURN = r"""
kubelet_enabled:
  description: Whether this run enabled the kubelet unit (or would have, in check mode); see O(enable_kubelet).
  returned: always
  type: bool
  sample: true
api_endpoint:
  description: The endpoint joins use (the C(server) of admin.conf without C(https://)).
  returned: always
  type: str
  sample: 198.51.100.254:6443
ca_cert_hash:
  description:
    - The discovery hash of the cluster CA, C(sha256:) + SHA-256 over the DER SubjectPublicKeyInfo of
      C(/etc/kubernetes/pki/ca.crt). Empty in check mode before the first init.
  returned: always
  type: str
  sample: sha256:2efe3a4bd7c02dfca3a12e81b6b4afe805a0801dff922812890e19477d4cc1aa
token:
  description: The bootstrap token C(kubeadm init) made. Empty in check mode and on an initialized node.
  returned: always
  type: str
  sample: abcdef.0123456789abcdef
certificate_key:
  description:
    - The key of the control plane certificates C(kubeadm init) uploaded (64 hex digits).
    - Empty in check mode and on an initialized node.
  returned: always
  type: str
  sample: 0f192561ef8eed55a153cb308bd00351a10d54b09bfe5f056a2c797b0adb129f
kubeadm_version:
  description: What C(kubeadm version -o short) printed; empty when it printed no version.
  returned: always
  type: str
  sample: v1.32.4
config:
  description: The kubeadm configuration (YAML documents).
  returned: always
  type: str
config_path:
  description: The file the configuration is written to.
  returned: always
  type: str
  sample: /etc/kubernetes/vipadm/kubeadm-init.yaml
stdout:
  description: The output of C(kubeadm init) when it ran.
  returned: when kubeadm init ran
  type: str
stderr:
  description: The error output of C(kubeadm init) when it ran.
  returned: when kubeadm init ran
  type: str
phase:
  description: The kubeadm phase that failed.
  returned: failure
  type: str
  sample: wait-control-plane
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm as kubeadm
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm_actions as actions

# The directory that stands for "/": unit tests point it at a temporary directory.
FILESYSTEM_ROOT = '/'


def argument_spec():
    return dict(
        kubernetes_version=dict(type='str', required=True),
        control_plane_endpoint=dict(type='str', required=True),
        advertise_address=dict(type='str'),
        bind_port=dict(type='int', default=6443),
        node_name=dict(type='str'),
        node_ip=dict(type='list', elements='str', default=[]),
        cri_socket=dict(type='str'),
        pod_subnet=dict(type='str'),
        service_subnet=dict(type='str'),
        cert_sans=dict(type='list', elements='str', default=[]),
        extra_args=dict(type='dict', options=dict(
            api_server=dict(type='dict'),
            controller_manager=dict(type='dict'),
            scheduler=dict(type='dict'),
            etcd=dict(type='dict'),
            kubelet=dict(type='dict'),
        )),
        cgroup_driver=dict(type='str', choices=['systemd', 'cgroupfs']),
        kubelet_config=dict(type='dict'),
        kube_proxy_config=dict(type='dict'),
        skip_phases=dict(type='list', elements='str', default=[]),
        ignore_preflight_errors=dict(type='list', elements='str', default=[]),
        image_repository=dict(type='str'),
        config_path=dict(type='path', default='/etc/kubernetes/vipadm/kubeadm-init.yaml'),
        kubeadm_path=dict(type='str', default='kubeadm'),
        enable_kubelet=dict(type='bool', default=False),
        timeouts=dict(type='dict', options={name: dict(type='str') for name in kubeadm.TIMEOUT_FIELDS}),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    kubeadm_path = module.get_bin_path(module.params['kubeadm_path'], required=True)
    systemctl_path = module.get_bin_path('systemctl', required=True) if module.params['enable_kubelet'] else None
    actions.run_in_module(module, actions.init, FILESYSTEM_ROOT, kubeadm_path, module.check_mode, module._diff,
                          systemctl_path=systemctl_path)


if __name__ == '__main__':
    main()
