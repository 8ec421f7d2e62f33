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


class PlanError(ValueError):
    """A lab parameter is wrong; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Node:
    """One lab node as the outside world sees it."""

    name: str  # hostname inside the node: cp1.., worker1..
    address: str
    role: str  # "control_plane" or "worker"

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


def make_plan(name: str, subnet: str, control_planes: int, workers: int) -> LabPlan:
    """Derive every name and address of a lab; raise PlanError when the request cannot fit."""
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
    nodes = []
    names = [(f"cp{i}", f"c{i}", "control_plane") for i in range(1, control_planes + 1)]
    names += [(f"worker{i}", f"w{i}", "worker") for i in range(1, workers + 1)]
    for offset, (node_name, short, role) in enumerate(names):
        host = FIRST_NODE_HOST + offset
        nodes.append(
            NodePlan(
                node=Node(node_name, str(ipaddress.IPv4Address(base + host)), role),
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
    )


def overlapping_routes(subnet: ipaddress.IPv4Network, routes: list[dict]) -> list[str]:
    """Routes (from `ip -j -4 route show table all`) that overlap subnet, default routes excluded.

    Returns them as readable strings for the error message.
    """
    clashes = []
    for route in routes:
        dst = route.get("dst", "")
        if dst in ("", "default", "0.0.0.0/0"):
            continue
        try:
            network = ipaddress.IPv4Network(dst if "/" in dst else f"{dst}/32", strict=False)
        except ValueError:
            continue
        if network.prefixlen == 0 or not network.overlaps(subnet):
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
