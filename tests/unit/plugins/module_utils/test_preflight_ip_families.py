"""Preflight of IPv6 and dual stack: an IPv6 VIP in the interface's prefix and free, subnets of one or two
families, advertise addresses and kubelet node IPs of the cluster's families; through evaluate() as the
preflight module calls it, and _ip_families directly."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _ip_families as fam  # noqa: E402
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _preflight as pf  # noqa: E402

CP = ["cp1", "cp2"]
WORKERS = ["worker1"]
PREFIX = "2001:db8:c633:6400::"
VIP6 = PREFIX + "fe"


def node(index, ipv4_default_route=True, **extra):
    """A dual-stack node, as the lab's: 198.51.100.1x/24 and 2001:db8:c633:6400::x/64 on eth0."""
    v4, v6 = "198.51.100.%d" % (11 + index), "%s%x" % (PREFIX, 11 + index)
    report = dict(hostname="n%d" % index, address=v4,
                  interfaces={"lo": ["127.0.0.1/8", "::1/128"],
                              "eth0": ["%s/24" % v4, "%s/64" % v6, "fe80::%x/64" % (11 + index)]},
                  default_interface="eth0" if ipv4_default_route else None, kubeadm_path="/usr/bin/kubeadm",
                  cluster_state="none", vip_tcp_answers=False, vip_arp_answers=False)
    report.update(extra)
    return report


def v6(index):
    return "%s%x" % (PREFIX, 11 + index)


def v4(index):
    return "198.51.100.%d" % (11 + index)


def reports(**per_node):
    names = CP + WORKERS
    return {name: per_node.get(name) or node(i) for i, name in enumerate(names)}


IPV6_ONLY = dict(vip=VIP6, pod_subnet="2001:db8:1::/56", service_subnet="2001:db8:2::/112",
                 advertise_addresses={"cp1": v6(0), "cp2": v6(1)},
                 node_ips={"cp1": [v6(0)], "cp2": [v6(1)], "worker1": [v6(2)]})
DUAL = dict(vip="198.51.100.254", pod_subnet="10.244.0.0/16,2001:db8:1::/56",
            service_subnet="10.96.0.0/16,2001:db8:2::/112",
            node_ips={"cp1": [v4(0), v6(0)], "cp2": "%s,%s" % (v4(1), v6(1)), "worker1": [v4(2), v6(2)]})


def run(node_reports=None, **kw):
    settings = dict(vip="198.51.100.254", port=6443, kubernetes_version="1.36.3", kube_vip_version="v1.2.3",
                    mode="arp", bgp_peers=None, interface=None, init_host=None)
    settings.update(kw)
    return pf.evaluate(settings, CP, WORKERS, reports() if node_reports is None else node_reports)["errors"]


def test_an_ipv4_cluster_with_nothing_new_set_passes():
    assert run() == []


def test_an_ipv6_only_cluster_with_its_addresses_passes():
    assert run(**IPV6_ONLY) == []


def test_a_dual_stack_cluster_with_an_ipv4_vip_passes():
    assert run(**DUAL) == []


def test_a_dual_stack_cluster_without_node_ips_passes():
    """The kubelet then reports the IPv4 address only: Pods still get both families from the CNI."""
    assert run(**dict(DUAL, node_ips={})) == []


def test_an_ipv6_vip_outside_the_interface_prefix_is_refused():
    errors = run(**dict(IPV6_ONLY, vip="2001:db8:ffff::fe"))
    assert errors and all("kube_vip_address 2001:db8:ffff::fe is outside the subnet of eth0" in e for e in errors)
    # the interface's IPv6 prefix is named, not its IPv4 subnet nor its link-local prefix
    assert "(2001:db8:c633:6400::b/64)" in errors[0] and "198.51.100" not in errors[0] and "fe80" not in errors[0]


def test_an_ipv6_vip_a_machine_answers_for_with_ndp_is_refused():
    answered = reports(cp2=node(1, vip_arp_answers=True))
    assert run(answered, **IPV6_ONLY) == [
        "kube_vip_address %s already answers (seen from cp2) but no node has a cluster yet: another machine holds "
        "that address; pick a free address." % VIP6]


def test_an_ipv6_vip_that_is_a_node_address_is_refused():
    errors = run(**dict(IPV6_ONLY, vip=v6(2)))
    assert errors == ["worker1: kube_vip_address %s is the node's own address (on eth0): the VIP must be a free "
                      "address that no node uses." % v6(2)]


def test_an_ipv6_advertise_address_with_the_default_ipv4_service_subnet_is_refused():
    errors = run(**dict(IPV6_ONLY, service_subnet="", pod_subnet=""))
    assert errors[0] == (
        "cp1 advertises control_plane_advertise_address %s, an IPv6 address, but the cluster's first Service subnet "
        "is IPv4 (kubeadm's default 10.96.0.0/12): kube-apiserver refuses an advertise address of another family "
        "than its Services; set control_plane_advertise_address to the node's IPv4 address, or put an IPv6 subnet "
        "first in control_plane_service_subnet." % v6(0))
    assert errors[1].startswith("cp2 advertises control_plane_advertise_address %s, an IPv6 address" % v6(1))
    # the cluster is then IPv4 only, and the kubelets' IPv6 node IPs are refused too
    assert errors[2:] == ["%s: %s %s is IPv6 but the cluster has no IPv6 subnet: give the node's IPv4 address." % (
        name, variable, v6(index)) for index, (name, variable) in enumerate(
        [("cp1", "control_plane_node_ip"), ("cp2", "control_plane_node_ip"), ("worker1", "worker_node_ip")])]


def test_an_ipv6_cluster_without_advertise_addresses_refuses_the_implicit_ipv4_one():
    errors = run(**dict(IPV6_ONLY, advertise_addresses={"cp1": v6(0)}))
    assert errors == [
        "cp2 advertises the IPv4 address of its default route (eth0), which kubeadm takes without "
        "control_plane_advertise_address, an IPv4 address, but the cluster's first Service subnet is IPv6 "
        "(2001:db8:2::/112): kube-apiserver refuses an advertise address of another family than its Services; set "
        "control_plane_advertise_address to the node's IPv6 address, or put an IPv4 subnet first in "
        "control_plane_service_subnet.",
        "The control planes advertise addresses of both families (IPv4: cp2; IPv6: cp1): the kubernetes Service "
        "lists every API server's advertise address and has one family; give every control plane an advertise "
        "address of the same family."]


def test_a_node_without_an_ipv4_default_route_has_no_implicit_advertise_family():
    bare = reports(cp2=node(1, ipv4_default_route=False))
    assert run(bare, interface="eth0", **dict(IPV6_ONLY, advertise_addresses={"cp1": v6(0)})) == []


def test_mixed_advertise_families_in_a_dual_stack_cluster_are_refused():
    errors = run(**dict(DUAL, advertise_addresses={"cp1": v4(0), "cp2": v6(1)}))
    assert errors[-1].startswith("The control planes advertise addresses of both families (IPv4: cp1; IPv6: cp2)")
    assert errors[0].startswith("cp2 advertises control_plane_advertise_address %s, an IPv6 address" % v6(1))


def test_an_advertise_address_that_is_not_the_nodes_is_refused():
    errors = run(**dict(IPV6_ONLY, advertise_addresses={"cp1": v6(0), "cp2": v6(0)}))
    assert errors == ["cp2: control_plane_advertise_address %s is not an address of the node: set it to one of "
                      "the addresses of its interfaces." % v6(0)]


def test_an_advertise_address_that_is_no_address_is_refused():
    errors = run(**dict(IPV6_ONLY, advertise_addresses={"cp1": "cp1.example", "cp2": v6(1)}))
    assert errors == ["cp1: control_plane_advertise_address 'cp1.example' is not an IP address: set it to an "
                      "address of the node."]


def test_an_ipv6_only_cluster_needs_the_kubelets_ipv6_node_ip_where_ipv4_has_the_default_route():
    errors = run(**dict(IPV6_ONLY, node_ips={"cp1": [v6(0)], "cp2": [v6(1)]}))
    assert errors == ["worker1: the cluster is IPv6 only but the kubelet would report the node's IPv4 address (of "
                      "its default route, eth0): set worker_node_ip to the node's IPv6 address."]


@pytest.mark.parametrize(("node_ip", "refusal"), [
    ([v4(0), "2001:db8::zz"], "cp1: control_plane_node_ip %s, 2001:db8::zz is not a list of IP addresses: give "
                               "the node's address, or one IPv4 and one IPv6 address for dual stack." % v4(0)),
    ([v4(0), v4(1)], "cp1: control_plane_node_ip %s, %s: the kubelet takes one address, or one of each family for "
                     "dual stack." % (v4(0), v4(1))),
    ([v6(1)], "cp1: control_plane_node_ip %s is not an address of the node: give addresses of its interfaces."
     % v6(1)),
])  # fmt: skip
def test_malformed_or_foreign_node_ips_are_refused(node_ip, refusal):
    assert run(**dict(DUAL, node_ips=dict(DUAL["node_ips"], cp1=node_ip))) == [refusal]


def test_a_node_ip_of_a_family_without_a_subnet_is_refused():
    assert run(node_ips={"worker1": [v4(2), v6(2)]}) == [
        "worker1: worker_node_ip %s is IPv6 but the cluster has no IPv6 subnet: give the node's IPv4 address." % v6(2)]


@pytest.mark.parametrize(("kind", "value", "refusal"), [
    ("pod", "10.244.0.0/16,10.245.0.0/16",
     "control_plane_pod_subnet lists two IPv4 subnets (10.244.0.0/16, 10.245.0.0/16): dual stack needs one IPv4 and "
     "one IPv6 subnet; keep one of them."),
    ("pod", "10.244.0.0/16,2001:db8:1::/56,10.1.0.0/16",
     "control_plane_pod_subnet lists 3 subnets: a cluster has one, or two of different families for dual stack (IPv4 "
     "and IPv6)."),
    ("service", "2001:db8:2::/64",
     "control_plane_service_subnet: 2001:db8:2::/64 is too large for Service addresses: kube-apiserver allows at "
     "most /108 for IPv6; use a smaller subnet."),
    ("service", "10.0.0.0/8",
     "control_plane_service_subnet: 10.0.0.0/8 is too large for Service addresses: kube-apiserver allows at most /12 "
     "for IPv4; use a smaller subnet."),
    ("service", "fd00::/300",
     "control_plane_service_subnet: 'fd00::/300' is not a CIDR: write a network such as 10.96.0.0/12, or two "
     "separated by a comma for dual stack."),
])  # fmt: skip
def test_subnets_that_kubeadm_or_the_api_server_refuse_are_refused_first(kind, value, refusal):
    networks, errors = fam.parse_subnets(value, kind)
    assert errors == [refusal]


def test_the_pod_and_service_subnets_list_the_families_in_one_order():
    errors = run(**dict(DUAL, pod_subnet="2001:db8:1::/56,10.244.0.0/16"))
    assert errors == ["control_plane_pod_subnet starts with an IPv6 subnet but the Service subnet (10.96.0.0/16, "
                      "2001:db8:2::/112) with an IPv4 one: list the families in the same order in both."]


def test_the_primary_family_is_the_first_service_subnets_and_ipv4_by_default():
    assert fam.primary_family([]) == 4
    assert fam.primary_family(fam.parse_subnets("2001:db8:2::/112,10.96.0.0/16", "service")[0]) == 6


def test_without_reports_only_the_settings_are_checked():
    settings = dict(IPV6_ONLY, advertise_addresses={"cp1": v6(0), "cp2": v4(1)})
    errors = fam.check_families(settings, CP, WORKERS, {})
    assert len(errors) == 2 and errors[0].startswith("cp2 advertises control_plane_advertise_address %s" % v4(1))
