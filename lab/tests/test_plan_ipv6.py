"""The lab plan's IPv6 addresses: a /64 of the documentation prefix per IPv4 subnet, paired host numbers."""

from __future__ import annotations

import ipaddress

from lab.plan import make_plan, overlapping_routes

DOCUMENTATION = ipaddress.ip_network("2001:db8::/32")


def test_an_ipv4_lab_has_no_ipv6_address():
    plan = make_plan("t", "198.51.100.0/24", 3, 1)
    assert plan.subnet6 is None and plan.vip6 == plan.controller_address6 == ""
    assert all(p.node.address6 == "" for p in plan.nodes)


def test_every_ipv6_address_is_in_the_documentation_prefix_and_pairs_with_the_ipv4_one():
    plan = make_plan("t", "198.51.100.32/27", 2, 1, ipv6=True)
    assert str(plan.subnet6) == "2001:db8:c633:6420::/64" and plan.subnet6.subnet_of(DOCUMENTATION)
    assert [(p.node.address, p.node.address6) for p in plan.nodes] == [
        ("198.51.100.43", "2001:db8:c633:6420::b"), ("198.51.100.44", "2001:db8:c633:6420::c"),
        ("198.51.100.45", "2001:db8:c633:6420::d")]
    assert (plan.controller_address6, plan.vip6, plan.vip) == ("2001:db8:c633:6420::1", "2001:db8:c633:6420::1e",
                                                                 "198.51.100.62")


def test_labs_on_different_slices_get_different_ipv6_subnets():
    subnets = {make_plan("t", f"198.51.100.{start}/27", 1, 0, ipv6=True).subnet6 for start in range(0, 256, 32)}
    assert len(subnets) == 8 and all(s.subnet_of(DOCUMENTATION) for s in subnets)


def test_ipv6_routes_that_overlap_the_lab_subnet_are_found_and_ipv4_ones_are_not_compared():
    subnet = make_plan("t", "198.51.100.0/24", 1, 0, ipv6=True).subnet6
    routes = [{"dst": "default", "dev": "eth0"}, {"dst": "fd00::/64", "dev": "eth0"},
              {"dst": "2001:db8::/32", "type": "unreachable"}, {"dst": "198.51.100.0/24", "dev": "br0"},
              {"dst": "2001:db8:c633:6400::5", "dev": "x"}]
    assert overlapping_routes(subnet, routes) == ["unreachable 2001:db8::/32", "2001:db8:c633:6400::5 dev x"]
