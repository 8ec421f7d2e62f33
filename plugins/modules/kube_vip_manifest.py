#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kube_vip_manifest
short_description: Write the kube-vip manifest exactly as a chosen kube-vip version prints it
version_added: 0.1.0
description:
  - Renders what C(kube-vip manifest pod|daemonset|rbac) prints for the chosen O(version) and flags,
    byte for byte, without running the kube-vip image and without network access, and places it in
    O(dest) (by default the kubelet's static Pod directory).
  - The options are kube-vip's own command-line flags in snake_case, for example O(leader_election)
    for C(--leaderElection). Options kube-vip does not have in the chosen version are refused.
  - The file is written atomically (temporary file in the same directory, then rename) with mode
    C(0600) and owner root, like kubeadm's own manifests. A missing directory is created with mode
    C(0700).
  - Bad input fails before anything is written, with a message that says what is wrong.
author:
  - vipadm developers (@vipadm)
attributes:
  check_mode:
    support: full
    description: Reports whether the file would change; writes nothing.
  diff_mode:
    support: full
    description: Returns the old and new manifest text.
  platform:
    support: full
    platforms: posix
    description: Runs on the node that gets the manifest; standard library only.
options:
  kind:
    description: Which manifest, as in C(kube-vip manifest <kind>). V(rbac) needs kube-vip v0.9.0 or newer.
    type: str
    choices: [pod, daemonset, rbac]
    default: pod
  version:
    description:
      - The kube-vip release whose output to reproduce, V(v0.4.0) up to V(v1.2.3).
      - It is also the image tag.
    type: str
    default: v1.2.3
  dest:
    description:
      - Where to write the manifest.
      - A DaemonSet or RBAC manifest must not go to the kubelet's static Pod directory.
    type: path
    default: /etc/kubernetes/manifests/kube-vip.yaml
  address:
    description:
      - The virtual IP (C(--address)), an IPv4 or IPv6 address; two comma-separated addresses for dual stack.
      - Mutually exclusive with O(vip).
    type: str
  vip:
    description:
      - The virtual IP in its older spelling (C(--vip)). kube-vip then emits C(vip_address) and, from
        v0.8.1, no prefix length.
    type: str
  interface:
    description: The interface that gets the VIP (C(--interface)), for example C(eth0), or C(lo) for BGP.
    type: str
  lo_interface_global_scope:
    description: Add the VIP to C(lo) with global scope (C(--loInterfaceGlobalScope), v0.8.4+).
    type: bool
    default: false
  services_interface:
    description: The interface for Service load balancer addresses (C(--serviceInterface)).
    type: str
  cidr:
    description: Prefix length of the VIP (C(--cidr)); until v0.8.10. kube-vip derives it when unset.
    type: str
  vip_subnet:
    description: Prefix length of the VIP (C(--vipSubnet), v0.5.6+). kube-vip derives it from v0.9.0 when unset.
    type: str
  port:
    description: The API server port (C(--port)).
    type: int
    default: 6443
  dns_mode:
    description: How a DNS name VIP is resolved (C(--dnsMode), v0.7.0+).
    type: str
    choices: [first, ipv4, ipv6, dual]
    default: first
  controlplane:
    description: Hold the control plane VIP (C(--controlplane)).
    type: bool
    default: false
  namespace:
    description: Namespace of the control plane lease (C(--namespace)).
    type: str
    default: kube-system
  ddns:
    description: Get the VIP by DHCP and publish it with DDNS (C(--ddns)).
    type: bool
    default: false
  autodetectcp:
    description: Detect the control plane nodes (C(--autodetectcp), v0.7.0+).
    type: bool
    default: false
  services:
    description: Serve Services of type LoadBalancer (C(--services)).
    type: bool
    default: false
  services_lease_name:
    description: Lease of the services leader (C(--servicesLeaseName), v0.6.3+).
    type: str
    default: plndr-svcs-lock
  services_election:
    description: One leader election per Service (C(--servicesElection), v0.5.0+).
    type: bool
    default: false
  lb_class_only:
    description: Only serve Services of kube-vip's load balancer class (C(--lbClassOnly), v0.5.5+).
    type: bool
    default: false
  only_allow_traffic_service_ports:
    description: Only allow traffic to Service ports (C(--onlyAllowTrafficServicePorts), v0.6.0+).
    type: bool
    default: false
  leader_election:
    description: Elect one leader that holds the VIP (C(--leaderElection)); needed for ARP.
    type: bool
    default: false
  lease_name:
    description: Name of the control plane lease (C(--leaseName), v0.6.1+).
    type: str
    default: plndr-cp-lock
  lease_duration:
    description:
      - Seconds a leader lease is valid (C(--leaseDuration)).
      - Default 15 from kube-vip v1.1.0, 5 before.
    type: int
  renew_deadline:
    description:
      - Seconds the leader has to renew (C(--leaseRenewDuration)).
      - Default 10 from kube-vip v1.1.0, 3 before.
    type: int
  retry_period:
    description:
      - Seconds between lease attempts (C(--leaseRetry)).
      - Default 2 from kube-vip v1.1.0, 1 before.
    type: int
  enable_node_labeling:
    description: Label the node that holds the VIP (C(--enableNodeLabeling), v0.6.3+).
    type: bool
    default: false
  provider_config:
    description: Path of an Equinix Metal provider config (C(--provider-config)); until v0.8.10.
    type: str
  arp:
    description: Announce the VIP with ARP (C(--arp)). Exactly one of O(arp) and O(bgp) is needed.
    type: bool
    default: false
  bgp:
    description: Advertise the VIP with BGP (C(--bgp)). Needs O(bgp_router_id) and peers.
    type: bool
    default: false
  bgp_router_id:
    description: This node's BGP router ID (C(--bgpRouterID)), written as an IPv4 address.
    type: str
  local_as:
    description: This node's AS number (C(--localAS)).
    type: int
    default: 65000
  peer_address:
    description: Address of a single BGP peer (C(--peerAddress)).
    type: str
  peer_pass:
    description: Password of that peer (C(--peerPass)).
    type: str
  peer_as:
    description: AS number of that peer (C(--peerAS)).
    type: int
    default: 65000
  source_if:
    description: Interface BGP sessions start from (C(--sourceIF)).
    type: str
  source_ip:
    description: Address BGP sessions start from (C(--sourceIP)).
    type: str
  bgp_peers:
    description:
      - BGP peers (C(--bgppeers)). Each peer's password is hidden from logs and results.
      - Mutually exclusive with O(bgppeers).
    type: list
    elements: dict
    suboptions:
      address:
        description: The peer's IPv4 or IPv6 address.
        type: str
        required: true
      as:
        description: The peer's AS number.
        type: int
        required: true
      password:
        description: The BGP session password; must not contain C(:) or C(,).
        type: str
      multihop:
        description: Whether the peer is more than one hop away.
        type: bool
        default: false
      port:
        description: The peer's BGP port (kube-vip v0.8.10+).
        type: int
        default: 179
  bgppeers:
    description:
      - BGP peers in kube-vip's own text form, C(address:AS:password:multihop,...), for example
        C(192.168.0.10:65000::false). An IPv6 address goes in brackets.
      - Passwords in this text are hidden from results, but the text may reach the node's syslog;
        prefer O(bgp_peers) for peers with a password.
    type: str
  enable_load_balancer:
    description: Load-balance the API server with IPVS (C(--enableLoadBalancer)).
    type: bool
    default: false
  lb_port:
    description: Port of the IPVS load balancer (C(--lbPort)).
    type: int
    default: 6443
  lb_forwarding_method:
    description:
      - IPVS forwarding method (C(--lbForwardingMethod), v0.4.1+).
      - V(masquerade) makes the container privileged from v0.8.0, with or without O(enable_load_balancer).
    type: str
    choices: [local, masquerade, nat, tunnel, direct]
    default: local
  prometheus_http_server:
    description: Address of the metrics endpoint (C(--prometheusHTTPServer), v0.5.0+).
    type: str
    default: ":2112"
  enable_endpoint_slices:
    description: Watch EndpointSlices (C(--enableEndpointSlices)); v0.7.0 to v0.9.x.
    type: bool
    default: false
  enable_endpoints:
    description: Watch Endpoints (C(--enableEndpoints), v1.0.0+).
    type: bool
    default: false
  disable_service_updates:
    description: Do not update Service status (C(--disableServiceUpdates), v0.7.0+).
    type: bool
    default: false
  mirror_dest_interface:
    description: Mirror traffic to this interface (C(--mirrorDestInterface), v0.8.0+).
    type: str
  health_check_port:
    description: Port of kube-vip's health check endpoint, 0 for none (C(--healthCheckPort), v0.8.10+).
    type: int
    default: 0
  preserve_vip_on_leadership_loss:
    description: Keep the VIP when leadership is lost (C(--preserveVipOnLeadershipLoss), v1.0.4+).
    type: bool
    default: false
  k8s_config_path:
    description:
      - The host kubeconfig the Pod mounts at C(/etc/kubernetes/admin.conf) (C(--k8sConfigPath), v0.7.0+).
      - On the first control plane of Kubernetes 1.29 or newer use C(/etc/kubernetes/super-admin.conf)
        while C(kubeadm init) runs, then C(/etc/kubernetes/admin.conf) again (kube-vip issue 684).
    type: str
    default: /etc/kubernetes/admin.conf
  in_cluster:
    description: Use the C(kube-vip) ServiceAccount instead of a host kubeconfig (C(--inCluster)).
    type: bool
    default: false
  taint:
    description: Run the DaemonSet on control plane nodes only (C(--taint)); kind V(daemonset) only.
    type: bool
    default: false
  image:
    description:
      - The kube-vip image (C(--image), v1.0.1+), for example a mirror in an air-gapped registry.
        An untagged image gets O(version) as its tag.
      - Before v1.0.1 kube-vip has no C(--image) flag; the manifest is then the one that version
        prints with only the image reference replaced.
    type: str
notes:
  - The output is checked byte for byte against the real C(kube-vip manifest) binaries of ten releases
    from v0.4.0 to v1.2.3, built from their sources, on more than 200 command lines each.
seealso:
  - name: kube-vip static Pod documentation
    description: How kube-vip runs as a static Pod with kubeadm.
    link: https://kube-vip.io/docs/installation/static/
"""

EXAMPLES = r"""
- name: Write the kube-vip static Pod for an ARP control plane VIP
  vipadm.kubeadm.kube_vip_manifest:
    version: v0.8.9
    address: 192.168.0.40
    interface: eth0
    arp: true
    controlplane: true
    services: true
    leader_election: true

- name: First control plane during kubeadm init on Kubernetes 1.29+
  vipadm.kubeadm.kube_vip_manifest:
    address: 192.168.0.40
    interface: eth0
    arp: true
    controlplane: true
    leader_election: true
    k8s_config_path: /etc/kubernetes/super-admin.conf

- name: BGP with two peers and an image from a local registry
  vipadm.kubeadm.kube_vip_manifest:
    address: 192.168.0.40
    interface: lo
    bgp: true
    controlplane: true
    bgp_router_id: 192.168.0.2
    local_as: 65000
    bgp_peers:
      - address: 192.168.0.10
        as: 65000
      - address: 192.168.0.11
        as: 65000
        password: "{{ vault_bgp_password }}"
    image: registry.example.com/kube-vip/kube-vip
"""

RETURN = r"""
manifest:
  description: The manifest text, exactly as the chosen kube-vip version prints it.
  returned: success
  type: str
  sample: "apiVersion: v1\nkind: Pod\n..."
dest:
  description: The path of the manifest.
  returned: success
  type: str
  sample: /etc/kubernetes/manifests/kube-vip.yaml
leader_lease:
  description:
    - The Lease whose holder carries the control plane VIP (ARP mode with leader election), for
      M(vipadm.kubeadm.wait_for_vip)'s O(vipadm.kubeadm.wait_for_vip#module:after_kube_vip_restart); null
      for other modes.
  returned: success
  type: dict
  contains:
    namespace:
      description: Its namespace.
      type: str
    name:
      description: Its name.
      type: str
  sample: {"namespace": "kube-system", "name": "plndr-cp-lock"}
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vipadm.kubeadm.plugins.module_utils._files import place_file
from ansible_collections.vipadm.kubeadm.plugins.module_utils._kube_vip import (
    OPTIONS,
    KubeVipOptionError,
    bgp_peer_secrets,
    control_plane_lease,
    render,
)

STATIC_POD_DIRECTORY = "/etc/kubernetes/manifests"

ARGUMENT_SPEC = dict(
    kind=dict(type="str", choices=["pod", "daemonset", "rbac"], default="pod"),
    version=dict(type="str", default="v1.2.3"),
    dest=dict(type="path", default=os.path.join(STATIC_POD_DIRECTORY, "kube-vip.yaml")),
    address=dict(type="str"),
    vip=dict(type="str"),
    interface=dict(type="str"),
    lo_interface_global_scope=dict(type="bool", default=False),
    services_interface=dict(type="str"),
    cidr=dict(type="str"),
    vip_subnet=dict(type="str"),
    port=dict(type="int", default=6443),
    dns_mode=dict(type="str", choices=["first", "ipv4", "ipv6", "dual"], default="first"),
    controlplane=dict(type="bool", default=False),
    namespace=dict(type="str", default="kube-system"),
    ddns=dict(type="bool", default=False),
    autodetectcp=dict(type="bool", default=False),
    services=dict(type="bool", default=False),
    services_lease_name=dict(type="str", default="plndr-svcs-lock"),
    services_election=dict(type="bool", default=False),
    lb_class_only=dict(type="bool", default=False),
    only_allow_traffic_service_ports=dict(type="bool", default=False),
    leader_election=dict(type="bool", default=False),
    lease_name=dict(type="str", default="plndr-cp-lock"),
    lease_duration=dict(type="int"),
    renew_deadline=dict(type="int"),
    retry_period=dict(type="int"),
    enable_node_labeling=dict(type="bool", default=False),
    provider_config=dict(type="str"),
    arp=dict(type="bool", default=False),
    bgp=dict(type="bool", default=False),
    bgp_router_id=dict(type="str"),
    local_as=dict(type="int", default=65000),
    peer_address=dict(type="str"),
    peer_pass=dict(type="str", no_log=True),
    peer_as=dict(type="int", default=65000),
    source_if=dict(type="str"),
    source_ip=dict(type="str"),
    bgp_peers=dict(type="list", elements="dict", options=dict(
        address=dict(type="str", required=True),
        password=dict(type="str", no_log=True),
        multihop=dict(type="bool", default=False),
        port=dict(type="int", default=179),
        **{"as": dict(type="int", required=True)}
    )),
    bgppeers=dict(type="str", no_log=False),
    enable_load_balancer=dict(type="bool", default=False),
    lb_port=dict(type="int", default=6443),
    lb_forwarding_method=dict(type="str", choices=["local", "masquerade", "nat", "tunnel", "direct"],
                              default="local"),
    prometheus_http_server=dict(type="str", default=":2112"),
    enable_endpoint_slices=dict(type="bool", default=False),
    enable_endpoints=dict(type="bool", default=False),
    disable_service_updates=dict(type="bool", default=False),
    mirror_dest_interface=dict(type="str"),
    health_check_port=dict(type="int", default=0),
    preserve_vip_on_leadership_loss=dict(type="bool", default=False),
    k8s_config_path=dict(type="str", default="/etc/kubernetes/admin.conf"),
    in_cluster=dict(type="bool", default=False),
    taint=dict(type="bool", default=False),
    image=dict(type="str"),
)


def kube_vip_options(params):
    """Module parameters -> the renderer's options (the two peer forms share one option)."""
    options = dict((name, params.get(name)) for name in OPTIONS)
    options["bgp_peers"] = params.get("bgp_peers") or params.get("bgppeers")
    return options


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=[("address", "vip"), ("bgp_peers", "bgppeers")],
        supports_check_mode=True,
    )
    options = kube_vip_options(module.params)
    for secret in bgp_peer_secrets(options["bgp_peers"]):
        module.no_log_values.add(secret)
    dest = module.params["dest"]
    if options["kind"] != "pod" and os.path.dirname(os.path.abspath(dest)) == STATIC_POD_DIRECTORY:
        module.fail_json(msg="A %s manifest does not belong in the kubelet's static Pod directory %s; "
                             "set dest to another path." % (options["kind"], STATIC_POD_DIRECTORY))
    try:
        manifest = render(options)
        leader_lease = control_plane_lease(options)
    except KubeVipOptionError as error:
        module.fail_json(msg=str(error))
    try:
        outcome = place_file(dest, manifest, check_mode=module.check_mode)
    except (IOError, OSError) as error:
        module.fail_json(msg="Could not write %s: %s" % (dest, error))
    result = dict(changed=outcome["changed"], manifest=manifest, dest=dest, leader_lease=leader_lease)
    if module._diff:
        result["diff"] = dict(before=outcome["before"] or "", after=manifest,
                              before_header=dest, after_header=dest)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
