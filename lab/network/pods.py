"""Pod networking as a CNI daemon gives it (what kind's kindnetd does), done from the controller.

Each node that is a member of the cluster gets a CNI configuration (Debian's bridge + host-local
plugins) whose range is the podCIDR that the controller-manager gave its Node, and a route to every
other node's range via that node's address; the lab's DNS namespace gets the same routes so CoreDNS's
upstream can answer pods. A member is a node whose kubelet has joined (kubeadm init/join wrote its
kubelet.conf) and whose Node is listed: a CNI's DaemonSet pod runs there and nowhere else. After
`kubeadm reset` (kubelet.conf removed, the node's containers gone) the agent writes nothing into the
node any more, even while its Node object is still listed, as the DaemonSet pod that would have
written is gone with the reset.
The agent reads the Node objects through the cluster's endpoint with the admin.conf of a control
plane (the lab is the cluster's operator here, as a CNI's DaemonSet would hold its own credential).

Runs as `python -m lab.network.pods <state dir>` while the lab is up; standard library only.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CONFLIST_PATH = "/etc/cni/net.d/10-lab.conflist"
KUBELET_CONF = "/etc/kubernetes/kubelet.conf"  # written by kubeadm init/join, removed by kubeadm reset
POLL_SECONDS = 1.0


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def conflist(pod_cidrs: str | list[str]) -> str:
    """The CNI configuration of a node whose Node has these podCIDRs (one per IP family: a dual-stack Node has
    two, and host-local then gives every pod one address of each)."""
    cidrs = [cidr for cidr in _as_list(pod_cidrs) if cidr]
    return json.dumps(
        {
            "cniVersion": "0.4.0",
            "name": "lab",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "cni0",
                    "isGateway": True,
                    "ipMasq": False,  # pod addresses are routed between nodes, never hidden
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": cidr}] for cidr in cidrs],
                        "routes": [{"dst": "::/0" if ":" in cidr else "0.0.0.0/0"} for cidr in cidrs],
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        },
        indent=2,
    ) + "\n"


def routes(own_name: str | None, pod_cidrs: dict, addresses: dict) -> list[tuple[str, str]]:
    """(pod range, via address) for every node but own_name whose range and an address of the range's IP family
    are known. pod_cidrs: name -> a podCIDR or the list of podCIDRs; addresses: name -> an address or a list."""
    found = []
    for name, cidrs in pod_cidrs.items():
        if name == own_name or name not in addresses:
            continue
        for cidr in _as_list(cidrs):
            if not cidr:
                continue
            version = ipaddress.ip_network(cidr, strict=False).version
            via = [a for a in _as_list(addresses[name]) if a and ipaddress.ip_address(a).version == version]
            if via:
                found.append((cidr, via[0]))
    return sorted(found)


_KUBECONFIG_FIELD = re.compile(r"^\s*(server|certificate-authority-data|client-certificate-data|client-key-data):\s*(\S+)\s*$", re.M)


def kubeconfig_fields(text: str) -> dict[str, str]:
    """server and the embedded credentials of a kubeconfig as kubeadm writes it (one cluster, one user)."""
    fields = {}
    for key, value in _KUBECONFIG_FIELD.findall(text):
        fields.setdefault(key, value)
    return fields


class Agent:
    def __init__(self, state_dir: Path):
        from lab.core import Lab  # the agent runs beside the lab, with its package on the path

        self.lab = Lab.load(state_dir)
        self.state_dir = Path(state_dir)
        self.applied: dict[str, tuple] = {}  # netns -> (netns inode, routes) last applied
        self.context: ssl.SSLContext | None = None
        self.server = ""

    def _credential(self) -> bool:
        for node in self.lab.nodes:
            if node.role != "control_plane" or not self.lab.is_running(node):
                continue
            try:
                text = self.lab.node_file(node, "/etc/kubernetes/admin.conf").read_text()
            except OSError:
                continue
            fields = kubeconfig_fields(text)
            if len(fields) < 4:
                continue
            context = ssl.create_default_context(cadata=base64.b64decode(fields["certificate-authority-data"]).decode())
            secret_dir = self.state_dir / "pods-agent"
            secret_dir.mkdir(mode=0o700, exist_ok=True)
            with tempfile.NamedTemporaryFile("wb", dir=secret_dir, delete=False) as pem:
                os.fchmod(pem.fileno(), 0o600)
                pem.write(base64.b64decode(fields["client-certificate-data"]) + b"\n")
                pem.write(base64.b64decode(fields["client-key-data"]) + b"\n")
            try:
                context.load_cert_chain(pem.name)
            finally:
                os.unlink(pem.name)
            self.context, self.server = context, fields["server"]
            return True
        return False

    def _pod_cidrs(self) -> dict[str, str]:
        request = urllib.request.Request(self.server + "/api/v1/nodes", headers={"Accept": "application/json"})
        with urllib.request.urlopen(request, context=self.context, timeout=3) as response:
            items = json.load(response)["items"]
        # podCIDRs: one range per IP family (dual stack); podCIDR is its first
        return {item["metadata"]["name"]: item.get("spec", {}).get("podCIDRs") or [item.get("spec", {}).get("podCIDR", "")]
                for item in items}

    def _apply_routes(self, netns: str, wanted: list[tuple[str, str]]) -> None:
        try:
            inode = os.stat(f"/run/netns/{netns}").st_ino
        except FileNotFoundError:
            return
        if self.applied.get(netns) == (inode, wanted):
            return
        batch = "".join(f"route replace {cidr} via {via}\n" for cidr, via in wanted)  # ip infers the family
        result = subprocess.run(["ip", "-n", netns, "-batch", "-"], input=batch, capture_output=True, text=True)
        if result.returncode == 0:
            self.applied[netns] = (inode, wanted)

    def sync(self) -> None:
        if self.context is None and not self._credential():
            return
        try:
            cidrs = self._pod_cidrs()
        except (OSError, ValueError, KeyError):
            self.context = None  # the credential may be gone (node reset): read it again next time
            return
        addresses = {n.name: [n.address, n.address6] for n in self.lab.nodes}
        for plan in self.lab.plan.nodes:
            node = plan.node
            if not self.lab.is_running(node):
                continue
            if not self.lab.node_file(node, KUBELET_CONF).exists():
                continue  # not joined yet, or reset: no DaemonSet pod of a CNI would run here
            cidr = [c for c in cidrs.get(node.name) or [] if c]
            if cidr:  # its Node is listed and has its range(s)
                path = self.lab.node_file(node, CONFLIST_PATH)
                text = conflist(cidr)
                try:
                    current = path.read_text()
                except OSError:
                    current = None
                if current != text:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(text)
            self._apply_routes(plan.netns, routes(node.name, cidrs, addresses))
        # The DNS namespace has IPv4 only: pods reach the lab's DNS (CoreDNS's upstream) over IPv4.
        self._apply_routes(self.lab.plan.dns_netns, routes(None, cidrs, {n.name: n.address for n in self.lab.nodes}))

    def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                self.sync()
            except Exception as exc:  # a lab mid-change (node stopping); log and keep going
                print(f"pods agent: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            time.sleep(max(0.0, POLL_SECONDS - (time.monotonic() - started)))


if __name__ == "__main__":
    Agent(Path(sys.argv[1])).run()
