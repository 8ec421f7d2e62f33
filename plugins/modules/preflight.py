#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: preflight
short_description: Refuse an inventory or nodes that the HA bootstrap cannot succeed on
description:
  - Checks the cluster settings and the reports of M(vipadm.kubeadm.preflight_facts) of every node, and
    fails with one sentence per problem (what is wrong, what to do) before anything changes.
  - Refuses when the VIP is missing, not an address, equal to a node's address, or (ARP mode) outside
    the subnet of the VIP interface of a control plane; the interface does not exist on a control plane;
    hostnames are not unique; the Kubernetes or kube-vip version is unsupported; the port is out of range;
    BGP mode has no or malformed peers; kubeadm is missing on a node; the VIP already answers while no node
    has a cluster yet; the control_plane group is missing; a node is unreachable (its report is Ansible's
    unreachable result, registered with C(ignore_unreachable)); Service addresses that cannot work (see
    O(services_addresses)); address families that cannot work together (see O(service_subnet),
    O(advertise_addresses), O(node_ips)).
  - For an IPv6 VIP the same checks hold with the interface's IPv6 prefix, and M(vipadm.kubeadm.preflight_facts)
    probes it with Neighbor Discovery instead of ARP.
  - Warns about an even number of control planes (etcd quorum).
  - Pure computation; run it once, on the controller.
version_added: 0.1.0
author:
  - vipadm developers (@vipadm)
options:
  vip:
    description: The VIP (C(kube_vip_address)).
    type: str
  port:
    description: The API server port behind the VIP.
    type: raw
    default: 6443
  kubernetes_version:
    description: The Kubernetes version to deploy (C(vipadm_kubernetes_version)).
    type: str
  kube_vip_version:
    description: The kube-vip release of the manifest.
    type: str
  mode:
    description: How kube-vip announces the VIP.
    type: str
    choices: [arp, bgp]
    default: arp
  bgp_peers:
    description:
      - BGP peers (mappings with address, as, password, multihop, port; or kube-vip's text form).
      - Only the peers' passwords are hidden from logs and results; addresses and AS numbers stay readable
        in refusals.
    type: raw
  interface:
    description: The VIP interface on every control plane; each one's default-route interface when empty.
    type: str
  init_host:
    description: The control plane that initializes the cluster; the first of I(control_planes) when empty.
    type: str
  services:
    description: Whether kube-vip also serves Services of type LoadBalancer (C(kube_vip_services)).
    type: bool
    default: false
  services_election:
    description: One leader election per Service (C(kube_vip_services_election)); refused without O(services).
    type: bool
    default: false
  services_addresses:
    description:
      - The addresses Services of type LoadBalancer may take (C(kube_vip_services_addresses)), each an address,
        a range C(first-last) or a CIDR.
      - Refused when malformed, overlapping, holding the VIP or a node's address, without O(services), or (ARP
        mode) outside the subnet of the VIP interface of a control plane or holding its network or broadcast
        address.
      - Refused when an address already answers ARP or Neighbor Discovery from a machine that is not a node (the
        C(services_answers) of a node's report whose Ethernet address is none of the nodes' C(interface_macs)); an
        answer from a node is kube-vip holding that address already.
    type: list
    elements: str
    default: []
  pod_subnet:
    description:
      - The Pods' subnet (C(control_plane_pod_subnet)), one CIDR, or an IPv4 and an IPv6 one separated by a comma
        (dual stack). Refused when malformed, with more than two, with two of one family, or when its first family
        is not the first of O(service_subnet).
    type: str
  service_subnet:
    description:
      - The Services' subnet (C(control_plane_service_subnet)), in the same forms; kubeadm's default 10.96.0.0/12
        when empty. Its first family is the cluster's primary family. Refused as O(pod_subnet), and when larger
        than kube-apiserver allows (/12 for IPv4, /108 for IPv6).
    type: str
  advertise_addresses:
    description:
      - Inventory name of each control plane -> its C(control_plane_advertise_address) (when empty, the address of its
        IPv4 default route, which kubeadm takes).
      - Refused when not an address of the node, of another family than the primary one (kube-apiserver would not
        start), or when the control planes advertise addresses of both families.
    type: dict
    default: {}
  node_ips:
    description:
      - Inventory name -> the kubelet's node IPs (C(control_plane_node_ip), C(worker_node_ip)), one address or
        one of each family.
      - Refused when malformed, of a family the cluster has no subnet of, or not addresses of the node; and
        missing on a node with an IPv4 default route in an IPv6-only cluster (the kubelet would report its IPv4
        address).
    type: dict
    default: {}
  control_planes:
    description: Inventory names of the control planes, in order.
    type: list
    elements: str
    default: []
  workers:
    description: Inventory names of the workers.
    type: list
    elements: str
    default: []
  nodes:
    description:
      - Inventory name -> report of M(vipadm.kubeadm.preflight_facts), plus C(address) (the inventory address).
    type: dict
    default: {}
extends_documentation_fragment:
  - vipadm.kubeadm.read_only
"""

EXAMPLES = r"""
- name: Refuse what cannot work, before any change
  vipadm.kubeadm.preflight:
    vip: "{{ kube_vip_address }}"
    kubernetes_version: "{{ vipadm_kubernetes_version }}"
    kube_vip_version: v0.8.9
    control_planes: "{{ groups['control_plane'] }}"
    workers: "{{ groups['workers'] | default([]) }}"
    nodes: "{{ reports }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
init_host:
  description: The control plane that runs kubeadm init, or that already holds the cluster.
  returned: success
  type: str
  sample: cp1
cluster_exists:
  description: Whether a control plane already carries a cluster.
  returned: success
  type: bool
warnings_found:
  description: The warnings (also shown as Ansible warnings).
  returned: always
  type: list
  elements: str
errors:
  description: The refusals, one sentence each.
  returned: failure
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _preflight
from ansible_collections.vipadm.kubeadm.plugins.module_utils._kube_vip import bgp_peer_secrets


def main():
    module = AnsibleModule(
        argument_spec=dict(
            vip=dict(type="str"),
            port=dict(type="raw", default=6443),
            kubernetes_version=dict(type="str"),
            kube_vip_version=dict(type="str"),
            mode=dict(type="str", choices=["arp", "bgp"], default="arp"),
            # raw (mappings or text) has no suboptions: the passwords are hidden by value below
            bgp_peers=dict(type="raw", no_log=False),
            interface=dict(type="str"),
            init_host=dict(type="str"),
            services=dict(type="bool", default=False),
            services_election=dict(type="bool", default=False),
            services_addresses=dict(type="list", elements="str", default=[]),
            pod_subnet=dict(type="str"),
            service_subnet=dict(type="str"),
            advertise_addresses=dict(type="dict", default={}),
            node_ips=dict(type="dict", default={}),
            control_planes=dict(type="list", elements="str", default=[]),
            workers=dict(type="list", elements="str", default=[]),
            nodes=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    params = module.params
    for secret in bgp_peer_secrets(params["bgp_peers"]):
        module.no_log_values.add(secret)
    settings = {key: params[key] for key in (
        "vip", "port", "kubernetes_version", "kube_vip_version", "mode", "bgp_peers", "interface", "init_host",
        "services", "services_election", "services_addresses", "pod_subnet", "service_subnet",
        "advertise_addresses", "node_ips")}
    outcome = _preflight.evaluate(settings, params["control_planes"], params["workers"], params["nodes"])
    for warning in outcome["warnings"]:
        module.warn(warning)
    if outcome["errors"]:
        module.fail_json(msg="Preflight refused, nothing was changed:\n- " + "\n- ".join(outcome["errors"]),
                         errors=outcome["errors"], warnings_found=outcome["warnings"])
    module.exit_json(changed=False, init_host=outcome["init_host"], cluster_exists=outcome["cluster_exists"],
                     warnings_found=outcome["warnings"])


if __name__ == "__main__":
    main()
