"""The lab network: one bridge with the controller's address, guards so that nothing leaves the
machine and nodes cannot open connections to the controller's namespace, and the lab's DNS in a
namespace of its own on the bridge (dns.py). The pod network agent is pods.py.

`Network` is a part of `lab.core.Lab` (it uses the lab's plan and state dir).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..plan import GUARD_ROUTE_METRIC, overlapping_routes
from ..system import LabError, run as _run

DNS_SERVER = Path(__file__).resolve().parent / "dns.py"

# Classic BPF for a tc direct-action filter on the bridge's ingress, i.e. on what nodes send to the
# controller's namespace (traffic between nodes is switched and never passes there). It drops
# everything except ARP, ICMP and ICMPv6 other than echo requests (so NDP and errors pass), and TCP
# segments that are not a bare SYN: nodes can answer the controller but cannot open connections to any
# address of its namespace. IPv6 packets whose first next header is not TCP or ICMPv6 (extension
# headers, e.g. MLD's hop-by-hop option) are dropped: the controller needs none of them.
# (This kernel has cls_bpf but neither the gact action module nor nftables; no tcpdump to compile a
# filter, so guard_program() assembles it; tests run it on sample frames.)
TC_ACT_OK, TC_ACT_SHOT = 0, 2
_ETH_HLEN = 14
_IPV6_NEXT_HEADER = _ETH_HLEN + 6
_IPV6_PAYLOAD = _ETH_HLEN + 40
_BPF_OPCODES = {"ldh": 0x28, "ldb": 0x30, "ldxmsh": 0xB1, "ldbx": 0x50, "and": 0x54, "jeq": 0x15, "jset": 0x45,
                "ret": 0x06}


def guard_program() -> list[tuple]:
    """The guard as (label, opcode, k, jump-if-true label, jump-if-false label); None: the next instruction."""
    return [
        (None, "ldh", 12, None, None),                  # EtherType
        (None, "jeq", 0x0806, "accept", None),          # ARP
        (None, "jeq", 0x0800, None, "ipv6"),
        (None, "ldb", _ETH_HLEN + 9, None, None),       # IPv4 protocol
        (None, "jeq", 1, None, "tcp4"),                 # ICMP
        (None, "ldh", _ETH_HLEN + 6, None, None),       # fragment offset: only the first fragment has a header
        (None, "jset", 0x1FFF, "drop", None),
        (None, "ldxmsh", _ETH_HLEN, None, None),        # X = IPv4 header length
        (None, "ldbx", _ETH_HLEN, None, None),          # ICMP type
        (None, "jeq", 8, "drop", "accept"),             # echo request
        ("tcp4", "jeq", 6, None, "drop"),
        (None, "ldh", _ETH_HLEN + 6, None, None),
        (None, "jset", 0x1FFF, "drop", None),
        (None, "ldxmsh", _ETH_HLEN, None, None),
        (None, "ldbx", _ETH_HLEN + 13, None, None),     # TCP flags
        (None, "and", 0x12, None, None),                # SYN|ACK
        (None, "jeq", 0x02, "drop", "accept"),          # a bare SYN opens a connection
        ("ipv6", "jeq", 0x86DD, None, "drop"),
        (None, "ldb", _IPV6_NEXT_HEADER, None, None),
        (None, "jeq", 58, None, "tcp6"),                # ICMPv6
        (None, "ldb", _IPV6_PAYLOAD, None, None),       # ICMPv6 type
        (None, "jeq", 128, "drop", "accept"),           # echo request
        ("tcp6", "jeq", 6, None, "drop"),
        (None, "ldb", _IPV6_PAYLOAD + 13, None, None),  # TCP flags
        (None, "and", 0x12, None, None),
        (None, "jeq", 0x02, "drop", "accept"),
        ("accept", "ret", TC_ACT_OK, None, None),
        ("drop", "ret", TC_ACT_SHOT, None, None),
    ]  # fmt: skip


def assemble(program: list[tuple]) -> str:
    """tc's `bpf bytecode` text ("count,code jt jf k,...") of a program of guard_program()'s form."""
    labels = {label: index for index, (label, *_rest) in enumerate(program) if label}
    words = []
    for index, (_label, opcode, k, if_true, if_false) in enumerate(program):
        jt = labels[if_true] - index - 1 if if_true else 0
        jf = labels[if_false] - index - 1 if if_false else 0
        if not (0 <= jt <= 255 and 0 <= jf <= 255):
            raise ValueError(f"instruction {index}: classic BPF jumps forward only, by at most 255")
        words.append(f"{_BPF_OPCODES[opcode]} {jt} {jf} {k}")
    return ",".join([str(len(words)), *words])


CONTROLLER_GUARD_BPF = assemble(guard_program())


class Network:
    """The network half of a Lab: needs self.plan, self.state_dir, self.nodes, self._start_service and
    self._stop_service."""

    def _check_free(self) -> None:
        if (self.state_dir / "lab.json").exists():
            raise LabError(
                f"a lab already has its state in {self.state_dir}: run `down` first (or choose another --state-dir)"
            )
        taken = [p.netns for p in self.plan.nodes if Path("/run/netns", p.netns).exists()]
        if taken or Path("/sys/class/net", self.plan.bridge).exists():
            raise LabError(
                f"a lab named {self.name!r} is already up on this machine (bridge {self.plan.bridge} or "
                f"namespaces {', '.join(taken)} exist): choose another --name or bring that lab down"
            )
        for family, subnet in (("-4", self.plan.subnet), ("-6", self.plan.subnet6)):
            if subnet is None:
                continue
            routes = json.loads(_run(["ip", "-j", family, "route", "show", "table", "all"]).stdout or "[]")
            clashes = overlapping_routes(subnet, routes)
            if clashes:
                raise LabError(
                    f"subnet {subnet} overlaps existing route(s) of this machine: {'; '.join(clashes)}. "
                    "Choose a subnet no interface, route or other lab uses (--subnet; the IPv6 /64 follows from it); "
                    "nothing was changed"
                )

    def _network_up(self) -> None:
        plan = self.plan
        subnet = str(plan.subnet)
        # Guard: if the bridge route ever goes, lab traffic hits "unreachable", not the default route.
        _run(["ip", "route", "add", "unreachable", subnet, "metric", str(GUARD_ROUTE_METRIC)])
        _run(["ip", "link", "add", plan.bridge, "address", plan.bridge_mac, "type", "bridge",
              "stp_state", "0", "forward_delay", "0"])  # fmt: skip
        Path(f"/proc/sys/net/ipv6/conf/{plan.bridge}/disable_ipv6").write_text("0\n" if plan.subnet6 else "1\n")
        _run(["ip", "addr", "add", f"{plan.controller_address}/{plan.prefixlen}", "dev", plan.bridge])
        if plan.subnet6:
            _run(["ip", "-6", "route", "add", "unreachable", str(plan.subnet6), "metric", str(GUARD_ROUTE_METRIC)])
            # Every neighbour solicitation floods to every port: with MLD snooping, a port whose node never
            # sent a report (its kube-vip just took the VIP) could miss the solicitations for the VIP.
            Path(f"/sys/class/net/{plan.bridge}/bridge/multicast_snooping").write_text("0\n")
            # nodad: the lab's own addresses are unique by construction; DAD would only delay them 1-2 s.
            _run(["ip", "addr", "add", f"{plan.controller_address6}/{plan.subnet6.prefixlen}", "dev", plan.bridge,
                  "nodad"])  # fmt: skip
        _run(["tc", "qdisc", "add", "dev", plan.bridge, "clsact"])
        _run(["tc", "filter", "add", "dev", plan.bridge, "ingress", "prio", "1", "protocol", "all",
              "bpf", "bytecode", CONTROLLER_GUARD_BPF, "da"])  # fmt: skip
        _run(["ip", "link", "set", plan.bridge, "up"])
        self._dns_up()

    def _dns_up(self) -> None:
        """The lab's DNS in its own namespace on the bridge (nodes may not open connections to the
        controller's namespace; the guard filter drops them)."""
        plan = self.plan
        _run(["ip", "netns", "add", plan.dns_netns])
        _run(["ip", "link", "add", plan.dns_veth, "type", "veth", "peer", "name", "eth0", "netns", plan.dns_netns])
        _run(["ip", "link", "set", plan.dns_veth, "master", plan.bridge, "up"])
        ns = ["ip", "-n", plan.dns_netns]
        _run([*ns, "link", "set", "lo", "up"])
        _run([*ns, "link", "set", "eth0", "up"])
        _run([*ns, "addr", "add", f"{plan.dns_address}/{plan.prefixlen}", "dev", "eth0"])
        names = {node.name: node.address for node in self.nodes}
        names["controller"] = self.controller_address
        zone = self.state_dir / "dns.json"
        zone.write_text(json.dumps({"listen": plan.dns_address, "names": names}, indent=2) + "\n")
        self._start_service("dns", ["/usr/bin/python3", "-I", "-S", str(DNS_SERVER), str(zone)], netns=plan.dns_netns)

    def _dns_down(self) -> None:
        self._stop_service("dns")
        plan = self.plan
        if plan.dns_veth and Path("/sys/class/net", plan.dns_veth).exists():
            _run(["ip", "link", "del", plan.dns_veth], check=False)
        if plan.dns_netns and Path("/run/netns", plan.dns_netns).exists():
            _run(["ip", "netns", "del", plan.dns_netns], check=False)

    def _network_down(self) -> None:
        self._dns_down()
        plan = self.plan
        if Path("/sys/class/net", plan.bridge).exists():
            _run(["ip", "link", "del", plan.bridge])
        _run(["ip", "route", "del", "unreachable", str(plan.subnet), "metric", str(GUARD_ROUTE_METRIC)], check=False)
        if plan.subnet6:
            _run(["ip", "-6", "route", "del", "unreachable", str(plan.subnet6), "metric", str(GUARD_ROUTE_METRIC)],
                 check=False)  # fmt: skip
