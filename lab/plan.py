"""The lab's plan: names, addresses and MACs derived from the lab name and subnet.

Pure functions only (no root, no side effects), so unit tests can call them directly.
Every global name the lab creates (netns, bridge, veth, route) is derived from the lab name,
which is what lets several labs coexist on one machine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import ipaddress
import re

# Linux interface names are at most 15 characters; the longest one the lab makes is
# "<name>-w<index>" with index <= 99, so the lab name may have at most 10 characters.
LAB_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]{0,9}$")
FIRST_NODE_HOST = 11  # nodes take the 11th host of the subnet onwards
DNS_HOST = 2  # the lab's DNS: the 2nd host (the controller is the 1st)
GUARD_ROUTE_METRIC = 4242
# IPv6 addresses come from the documentation prefix only (RFC 3849), one /64 per lab derived from its IPv4
# subnet, so that labs on different slices of 198.51.100.0/24 get different IPv6 subnets too.
IPV6_DOCUMENTATION_PREFIX = ipaddress.IPv6Network("2001:db8::/32")


class PlanError(ValueError):
    """A lab parameter is wrong; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Node:
    """One lab node as the outside world sees it."""

    name: str  # hostname inside the node: cp1.., worker1..
    address: str
    role: str  # "control_plane" or "worker"
    address6: str = ""  # its IPv6 address beside the IPv4 one, in a lab with IPv6 ("" otherwise)

    def __str__(self) -> str:
        return self.name


@dataclasses.dataclass(frozen=True)
class NodePlan:
    node: Node
    netns: str  # network namespace name (/run/netns/<netns>)
    veth: str  # root-side end of the node's veth pair (the bridge port)
    mac: str  # MAC of eth0 inside the node


@dataclasses.dataclass(frozen=True)
class LabPlan:
    name: str
    subnet: ipaddress.IPv4Network
    controller_address: str
    vip: str
    bridge: str
    bridge_mac: str
    nodes: tuple[NodePlan, ...]
    dns_address: str = ""  # the lab's DNS (2nd host), in its own namespace on the bridge
    dns_netns: str = ""
    dns_veth: str = ""
    # IPv6 beside IPv4 (make_plan(..., ipv6=True)); None and "" in an IPv4-only lab
    subnet6: ipaddress.IPv6Network | None = None
    controller_address6: str = ""
    vip6: str = ""

    @property
    def prefixlen(self) -> int:
        return self.subnet.prefixlen

    def node(self, name: str) -> NodePlan:
        for plan in self.nodes:
            if plan.node.name == name:
                return plan
        known = ", ".join(p.node.name for p in self.nodes)
        raise PlanError(f"lab {self.name!r} has no node {name!r}; its nodes are: {known}")


def _mac(name: str, index: int) -> str:
    """A stable, locally administered unicast MAC: 02:<4 bytes of hash(name)>:<index>."""
    digest = hashlib.sha256(name.encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:4]) + f":{index:02x}"


def validate_name(name: str) -> None:
    if not LAB_NAME_PATTERN.match(name):
        raise PlanError(
            f"lab name {name!r} is not usable: use 1 to 10 lowercase letters or digits, starting with a "
            "letter (the name prefixes interface names, which Linux limits to 15 characters)"
        )


def ipv6_subnet(network: ipaddress.IPv4Network) -> ipaddress.IPv6Network:
    """The lab's IPv6 /64: 2001:db8:<the IPv4 network address in hex>::/64, e.g. 198.51.100.32/27 ->
    2001:db8:c633:6420::/64 (inside the documentation prefix, distinct for every IPv4 subnet)."""
    network_bits = int(IPV6_DOCUMENTATION_PREFIX.network_address) | (int(network.network_address) << 64)
    return ipaddress.IPv6Network((network_bits, 64))


def ipv6_twin(address: ipaddress.IPv4Address, network: ipaddress.IPv4Network, subnet6: ipaddress.IPv6Network) -> str:
    """The IPv6 address of the host that has `address` in `network`: the same host number in subnet6 (the
    11th host, cp1, is ::b), so each node's two addresses are easy to pair."""
    return str(subnet6.network_address + (int(address) - int(network.network_address)))


def make_plan(name: str, subnet: str, control_planes: int, workers: int, ipv6: bool = False) -> LabPlan:
    """Derive every name and address of a lab; raise PlanError when the request cannot fit.

    ipv6: every node, the controller and the VIP also get an address of the lab's IPv6 /64 (ipv6_subnet)."""
    validate_name(name)
    try:
        network = ipaddress.IPv4Network(subnet, strict=True)
    except ValueError as exc:
        raise PlanError(f"subnet {subnet!r} is not an IPv4 network like 198.51.100.0/24: {exc}") from None
    if control_planes < 1:
        raise PlanError("a lab needs at least one control plane node (--control-planes 1 or more)")
    if workers < 0:
        raise PlanError("the number of workers cannot be negative")
    if workers > 99 or control_planes > 99:
        raise PlanError("a lab has at most 99 control planes and 99 workers")
    hosts = network.num_addresses - 2
    needed = FIRST_NODE_HOST - 1 + control_planes + workers + 1  # + the VIP at the top
    if hosts < needed:
        raise PlanError(
            f"subnet {network} has {max(hosts, 0)} usable addresses but {control_planes + workers} nodes need "
            f"{needed} (controller = 1st host, nodes from the 11th, VIP = last): choose a larger subnet"
        )
    base = int(network.network_address)
    subnet6 = ipv6_subnet(network) if ipv6 else None
    nodes = []
    names = [(f"cp{i}", f"c{i}", "control_plane") for i in range(1, control_planes + 1)]
    names += [(f"worker{i}", f"w{i}", "worker") for i in range(1, workers + 1)]
    for offset, (node_name, short, role) in enumerate(names):
        host = FIRST_NODE_HOST + offset
        nodes.append(
            NodePlan(
                node=Node(node_name, str(ipaddress.IPv4Address(base + host)), role,
                          ipv6_twin(ipaddress.IPv4Address(base + host), network, subnet6) if subnet6 else ""),
                netns=f"{name}-{node_name}",
                veth=f"{name}-{short}",
                mac=_mac(name, host),
            )
        )
    return LabPlan(
        name=name,
        subnet=network,
        controller_address=str(ipaddress.IPv4Address(base + 1)),
        vip=str(network.broadcast_address - 1),
        bridge=f"{name}-br",
        bridge_mac=_mac(name, 1),
        nodes=tuple(nodes),
        dns_address=str(ipaddress.IPv4Address(base + DNS_HOST)),
        dns_netns=f"{name}-dns",
        dns_veth=f"{name}-dn",
        subnet6=subnet6,
        controller_address6=ipv6_twin(ipaddress.IPv4Address(base + 1), network, subnet6) if subnet6 else "",
        vip6=ipv6_twin(network.broadcast_address - 1, network, subnet6) if subnet6 else "",
    )


def overlapping_routes(subnet: ipaddress.IPv4Network | ipaddress.IPv6Network, routes: list[dict]) -> list[str]:
    """Routes (from `ip -j -4|-6 route show table all`) that overlap subnet, default routes excluded.

    Returns them as readable strings for the error message.
    """
    clashes = []
    for route in routes:
        dst = route.get("dst", "")
        if dst in ("", "default", "0.0.0.0/0", "::/0"):
            continue
        try:
            network = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue
        if network.version != subnet.version or network.prefixlen == 0 or not network.overlaps(subnet):
            continue
        text = " ".join(
            str(part)
            for part in (
                route.get("type", "") if route.get("type") not in (None, "unicast") else "",
                dst,
                f"dev {route['dev']}" if route.get("dev") else "",
                f"table {route['table']}" if route.get("table") not in (None, "main") else "",
            )
            if part
        )
        clashes.append(text)
    return clashes
