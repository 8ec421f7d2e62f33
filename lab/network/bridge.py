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
# everything except ARP, ICMP other than echo requests, and TCP segments that are not a bare SYN:
# nodes can answer the controller but cannot open connections to any address of its namespace.
# Made with: tcpdump -y EN10MB -ddd 'not (arp or (ip and icmp and icmp[icmptype] != icmp-echo)
#   or (ip and tcp and tcp[tcpflags] & (tcp-syn|tcp-ack) != tcp-syn))'
# with "ret #262144" (match) turned into "ret #2" (TC_ACT_SHOT) and "ret #0" meaning TC_ACT_OK.
# (This kernel has cls_bpf but neither the gact action module nor nftables.)
CONTROLLER_GUARD_BPF = (
    "19,40 0 0 12,21 15 0 2054,21 0 15 2048,48 0 0 23,21 0 5 1,40 0 0 20,69 11 0 8191,177 0 0 14,"
    "80 0 0 14,21 8 7 8,21 0 7 6,40 0 0 20,69 5 0 8191,177 0 0 14,80 0 0 27,84 0 0 18,21 1 0 2,"
    "6 0 0 0,6 0 0 2"
)


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
        routes = json.loads(_run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout or "[]")
        clashes = overlapping_routes(self.plan.subnet, routes)
        if clashes:
            raise LabError(
                f"subnet {self.plan.subnet} overlaps existing route(s) of this machine: {'; '.join(clashes)}. "
                "Choose a subnet no interface, route or other lab uses (--subnet); nothing was changed"
            )

    def _network_up(self) -> None:
        plan = self.plan
        subnet = str(plan.subnet)
        # Guard: if the bridge route ever goes, lab traffic hits "unreachable", not the default route.
        _run(["ip", "route", "add", "unreachable", subnet, "metric", str(GUARD_ROUTE_METRIC)])
        _run(["ip", "link", "add", plan.bridge, "address", plan.bridge_mac, "type", "bridge",
              "stp_state", "0", "forward_delay", "0"])  # fmt: skip
        Path(f"/proc/sys/net/ipv6/conf/{plan.bridge}/disable_ipv6").write_text("1\n")
        _run(["ip", "addr", "add", f"{plan.controller_address}/{plan.prefixlen}", "dev", plan.bridge])
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
