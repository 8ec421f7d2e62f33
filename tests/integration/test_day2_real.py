# -*- coding: utf-8 -*-
"""Day 2 on the real lab (kubeadm, kubelet, containerd, etcd, the control plane and kube-vip v1.2.3 built from
upstream, Kubernetes 1.37.2): nodes added and removed, certificates renewed.

One lab for both tests (5 control planes + 1 worker), prepared by node_prep.yml and bootstrapped once by site.yml with
an inventory of cp1-cp3 + the worker (fixture three_control_planes: etcd has those 3 members, 4 Nodes Ready); the
tests run in file order on it.

test_renew_certs (those 3 control planes): renew_certs.yml renews every control plane, one at a time; each API server
serves a new certificate (serial and notBefore read with openssl s_client from the controller, before and after),
kube-vip mounts admin.conf everywhere, and the VIP answered throughout (longest gap reported); a re-run with
renew_certs_within_days=30 and --check change nothing; the same 3 etcd members and 4 Nodes Ready after it.

test_add_and_remove_control_planes (from the 3 control planes + the worker of the fixture):
1. site.yml with all 5: the first three and the worker change nothing, etcd has 5 members, 6 Nodes Ready.
2. remove_node.yml --check on the VIP holder changes nothing; then it runs: drained, kube-vip stopped (it hands the
   VIP over), reset, its etcd member gone (kubeadm reset), its Node deleted; a re-run changes nothing.
3. Another joined control plane removed the same way: 3 control planes.
4. A third control plane powered off for good and removed: its etcd member removed from a control plane that stays,
   its Node deleted: 2 control planes (a warning says 2 members tolerate no failure).
5. The VIP holder removed in step 2 joins again with site.yml (an inventory without the two others): 3 members,
   the others change nothing.
etcd's members and the Nodes are checked after each step; the VIP is polled from the controller throughout.

Measured (2 shared cores, two runs; docs/day2.md has the table): site.yml with 3 control planes + 1 worker 54.0 s /
56.5 s, with all 5 (2 join) 40.8 s / 48.3 s; remove_node.yml of the live VIP holder 10.3 s / 11.3 s (longest VIP gap
3.1 s / 2.5 s), its re-run 3.4 s / 3.9 s, of another live control plane 7.8 s / 11.2 s, of a powered-off one 22.9 s /
24.1 s (15 s of it Ansible's SSH timeout); site.yml rejoining the removed holder 27.6 s / 29.9 s. renew_certs.yml on
3 control planes 118.7 s / 120.3 s (static Pods restarted in about 36 s per node), longest VIP gap 3.1 s in both.
Both tests: 457.7 s with a lab each (a 3+0 lab of its own for the renewal, bootstrapped by a site.yml of its own).
With the one lab and bootstrap (2026-12-05, 23:50 UTC): 378.4 s (fixture 115.8 s: lab up, node_prep, site.yml of
3+1 60.2 s; test_renew_certs 133.6 s, renew_certs.yml 121.4 s; test_add_and_remove_control_planes 124.6 s).
"""

from __future__ import annotations

import calendar
import json
import re
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from lab.tests.conftest import module_lab_factory  # noqa: F401  (the fixture)
from tests.integration.test_site import assert_ok, run

pytestmark = pytest.mark.lab

KUBECTL = ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf"]
ETCDCTL = (
    "ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt "
    "--cert=/etc/kubernetes/pki/apiserver-etcd-client.crt --key=/etc/kubernetes/pki/apiserver-etcd-client.key "
)


def inventory_of(lab, directory: Path, control_planes, workers=("worker1",)) -> Path:
    """A copy of the lab's inventory that lists only these nodes (the lab's group_vars linked)."""
    hosts = yaml.safe_load((lab.inventory_path / "hosts.yml").read_text())
    groups = hosts["all"]["children"]
    groups["control_plane"]["hosts"] = {
        n: v for n, v in groups["control_plane"]["hosts"].items() if n in control_planes
    }
    groups["workers"]["hosts"] = {n: v for n, v in (groups["workers"].get("hosts") or {}).items() if n in workers} or {}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    if not (directory / "group_vars").exists():
        (directory / "group_vars").symlink_to(lab.inventory_path / "group_vars")
    return directory


def playbook(inventory, name, *options, timeout=900):
    """run() of test_site against another inventory: (process, recap, seconds)."""

    class Inventory:
        inventory_path = inventory

    started = time.monotonic()
    process, recap = run(Inventory, name, *options, timeout=timeout)
    return process, recap, time.monotonic() - started


def etcd_members(lab, node) -> list[str]:
    result = lab.exec(node, ["sh", "-c", ETCDCTL + "member list"], check=False, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    return sorted(line.split(", ")[2] for line in result.stdout.splitlines() if ", started, " in line)


def nodes_ready(lab, node, expected, timeout=240) -> None:
    """Exactly the Nodes ``expected``, every one Ready (waits while a kubelet that just joined registers)."""
    deadline, seen = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        result = lab.exec(node, [*KUBECTL, "get", "nodes", "-o", "json"], check=False, timeout=60)
        if result.returncode == 0:
            items = json.loads(result.stdout)["items"]
            seen = {
                i["metadata"]["name"]: any(
                    c["type"] == "Ready" and c["status"] == "True" for c in i["status"]["conditions"]
                )
                for i in items
            }
            if sorted(seen) == sorted(expected) and all(seen.values()):
                return
        time.sleep(2)
    raise AssertionError(f"Nodes {seen}, expected {sorted(expected)} all Ready")


def vip_holders(lab, nodes) -> list[str]:
    return [n for n in nodes if f" {lab.vip}/" in lab.exec(n, ["ip", "-o", "-4", "addr", "show"], check=False).stdout]


def unchanged(recap, nodes):
    """The nodes of ``nodes`` the run changed (a node the run did not touch is not in the recap)."""
    return {n: recap[n]["changed"] for n in nodes if recap.get(n, {}).get("changed")}


class VipPoller(threading.Thread):
    """GET /livez through the VIP from the controller every 0.1 s (cluster CA, 0.5 s connect and 1 s read
    timeouts); ``gaps``: seconds from the last answer before each failure run to the next answer."""

    def __init__(self, vip, ca_pem):
        super().__init__(daemon=True)
        self.vip, self.context = vip, ssl.create_default_context(cadata=ca_pem)
        self.context.check_hostname = False
        self.stopped, self.gaps, self.probes, self.failures = threading.Event(), [], 0, 0

    def livez(self) -> bool:
        try:
            with socket.create_connection((self.vip, 6443), timeout=0.5) as raw:
                with self.context.wrap_socket(raw) as tls:
                    tls.settimeout(1)
                    tls.sendall(b"GET /livez HTTP/1.0\r\nHost: kubernetes\r\n\r\n")
                    return tls.recv(64).split(b" ")[1:2] == [b"200"]
        except OSError:
            return False

    def run(self):
        last_ok, failing = time.monotonic(), False
        while not self.stopped.is_set():
            self.probes += 1
            if self.livez():
                if failing:
                    self.gaps.append(time.monotonic() - last_ok)
                last_ok, failing = time.monotonic(), False
            else:
                self.failures, failing = self.failures + 1, True
            time.sleep(0.1)
        if failing:
            self.gaps.append(time.monotonic() - last_ok)

    def stop(self) -> float:
        self.stopped.set()
        self.join(10)
        return max(self.gaps, default=0.0)


FIRST = ["cp1", "cp2", "cp3"]


@pytest.fixture(scope="module")
def three_control_planes(module_lab_factory, tmp_path_factory):  # noqa: F811
    """The lab of both tests (5 control planes + 1 worker), prepared by node_prep.yml, bootstrapped by site.yml with an
    inventory of cp1-cp3 + worker1: test_renew_certs renews those three (they keep serving, etcd keeps its members),
    then test_add_and_remove_control_planes grows the cluster to 5 from there. One bootstrap of 3 control planes
    instead of two (a lab of 3 for the renewal and its own site.yml run). (lab, inventory of the three, seconds of
    that site.yml)."""
    lab = module_lab_factory(control_planes=5, workers=1)
    process, recap = run(lab, "playbooks/node_prep.yml")
    assert_ok(process, recap, [n.name for n in lab.nodes])
    three = inventory_of(lab, tmp_path_factory.mktemp("three"), FIRST)
    process, recap, seconds = playbook(three, "playbooks/site.yml")
    assert_ok(process, recap, FIRST + ["worker1"])
    assert etcd_members(lab, "cp1") == FIRST
    nodes_ready(lab, "cp1", FIRST + ["worker1"])
    return lab, three, seconds


def serving_certificate(address) -> dict:
    """serial and notBefore of the certificate the API server at address:6443 serves, read with openssl s_client."""
    chain = subprocess.run(
        ["openssl", "s_client", "-connect", f"{address}:6443"], input="", capture_output=True, text=True, timeout=30
    ).stdout
    fields = subprocess.run(
        ["openssl", "x509", "-noout", "-serial", "-startdate"],
        input=chain,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    found = dict(re.findall(r"^(serial|notBefore)=(.*)$", fields, re.M))  # notBefore=Dec  5 19:46:52 2026 GMT
    return {
        "serial": found["serial"],
        "not_before": calendar.timegm(time.strptime(found["notBefore"], "%b %d %H:%M:%S %Y GMT")),
    }


def test_renew_certs(three_control_planes):
    lab, three, _seconds = three_control_planes
    names = FIRST
    addresses = {name: lab.node(name).address for name in names}
    before = {name: serving_certificate(address) for name, address in addresses.items()}

    poller = VipPoller(lab.vip, lab.node_file("cp1", "/etc/kubernetes/pki/ca.crt").read_text())
    poller.start()
    try:
        process, recap, renewal = playbook(three, "playbooks/renew_certs.yml")
    finally:
        worst = poller.stop()
    assert_ok(process, recap, names)
    assert all(recap[n]["changed"] for n in names), recap
    after = {name: serving_certificate(address) for name, address in addresses.items()}
    for name in names:
        assert after[name]["serial"] != before[name]["serial"], name
        assert after[name]["not_before"] > before[name]["not_before"], name
        manifest = lab.node_file(name, "/etc/kubernetes/manifests/kube-vip.yaml").read_text()
        assert "path: /etc/kubernetes/admin.conf" in manifest and "super-admin.conf" not in manifest, name
    restarts = re.findall(r"restarted in ([0-9.]+) s", process.stdout)

    # Renewed a moment ago: nothing is due within 30 days; --check renews and restarts nothing.
    process, recap, _seconds = playbook(three, "playbooks/renew_certs.yml", "-e", "renew_certs_within_days=30")
    assert_ok(process, recap, names)
    assert unchanged(recap, names) == {}, recap
    process, recap, _seconds = playbook(three, "playbooks/renew_certs.yml", "--check")
    assert_ok(process, recap, names)
    assert {name: serving_certificate(address)["serial"] for name, address in addresses.items()} == {
        name: found["serial"] for name, found in after.items()
    }
    print(
        f"renew_certs.yml on 3 control planes: {renewal:.1f} s; VIP: longest gap {worst:.1f} s, {poller.failures} of "
        f"{poller.probes} probes failed; serials "
        f"{', '.join(before[n]['serial'] + ' -> ' + after[n]['serial'] for n in names)}"
        + f"; static Pods restarted in {', '.join(restarts)} s"
    )
    assert worst < 10, f"the VIP did not answer for {worst:.1f} s during the renewal"
    # The next test grows this cluster: the renewal left it as it found it.
    assert etcd_members(lab, "cp1") == FIRST
    nodes_ready(lab, "cp1", FIRST + ["worker1"])


def test_add_and_remove_control_planes(three_control_planes, tmp_path):
    lab, _three, seconds = three_control_planes
    full = lab.inventory_path
    figures = {"site.yml, 3 control planes + 1 worker": seconds}

    # 1. 3 control planes (the fixture; test_renew_certs may have renewed their certificates since), then all 5:
    # only the new ones change.
    first = FIRST
    assert etcd_members(lab, "cp1") == first
    nodes_ready(lab, "cp1", first + ["worker1"])
    process, recap, figures["site.yml, 5 control planes (2 new)"] = playbook(full, "playbooks/site.yml")
    assert_ok(process, recap, [n.name for n in lab.nodes])
    assert unchanged(recap, first + ["worker1"]) == {}, recap
    assert recap["cp4"]["changed"] and recap["cp5"]["changed"], recap
    assert etcd_members(lab, "cp1") == ["cp1", "cp2", "cp3", "cp4", "cp5"]
    nodes_ready(lab, "cp1", ["cp1", "cp2", "cp3", "cp4", "cp5", "worker1"])

    control_planes = ["cp1", "cp2", "cp3", "cp4", "cp5"]
    poller = VipPoller(lab.vip, lab.node_file("cp1", "/etc/kubernetes/pki/ca.crt").read_text())
    gaps = {}

    def step(what, inventory, name, *options):
        """playbook(), its seconds in figures and the longest VIP gap that ended during it in gaps."""
        seen = len(poller.gaps)
        process, recap, figures[what] = playbook(inventory, name, *options)
        gaps[what] = max(poller.gaps[seen:], default=0.0)
        return process, recap

    poller.start()
    try:
        # 2. The VIP holder leaves: --check first, then for real, then a re-run.
        (holder,) = vip_holders(lab, control_planes)
        process, recap, _seconds = playbook(full, "playbooks/remove_node.yml", "-e", f"remove_node={holder}", "--check")
        assert_ok(process, recap, control_planes)
        assert f"delete Node {holder} (kubectl on" in process.stdout and f"kubeadm reset on {holder}" in process.stdout
        stay = [n for n in control_planes if n != holder]
        assert etcd_members(lab, stay[0]) == control_planes, "--check changed etcd"
        left = f"remove_node.yml, {holder} (live, the VIP holder)"
        process, recap = step(left, full, "playbooks/remove_node.yml", "-e", f"remove_node={holder}")
        assert_ok(process, recap, control_planes)
        assert etcd_members(lab, stay[0]) == stay
        nodes_ready(lab, stay[0], stay + ["worker1"])
        assert not lab.node_file(holder, "/etc/kubernetes/kubelet.conf").exists()
        assert not lab.node_file(holder, "/etc/kubernetes/manifests/kube-vip.yaml").exists()
        assert vip_holders(lab, [holder]) == []
        process, recap = step(
            "remove_node.yml re-run (nothing to do)", full, "playbooks/remove_node.yml", "-e", f"remove_node={holder}"
        )
        assert_ok(process, recap, control_planes)
        assert unchanged(recap, control_planes + ["worker1"]) == {}, recap
        assert "is not part of the cluster" in process.stdout

        # 3. Another joined control plane leaves: 3 control planes.
        other = "cp5" if holder != "cp5" else "cp4"
        process, recap = step(
            f"remove_node.yml, {other} (live)", full, "playbooks/remove_node.yml", "-e", f"remove_node={other}"
        )
        assert_ok(process, recap, control_planes)
        stay = [n for n in stay if n != other]
        assert len(stay) == 3 and etcd_members(lab, stay[0]) == stay
        nodes_ready(lab, stay[0], stay + ["worker1"])

        # 4. A control plane is powered off for good, then removed from the cluster. When it held the VIP, the VIP
        # comes back after kube-vip's Lease expires (a failover, not the removal).
        dead = stay[-1]
        dead_held_vip = vip_holders(lab, [dead]) == [dead]
        lab.stop(dead)
        process, recap = step(
            f"remove_node.yml, {dead} (powered off{', it held the VIP' if dead_held_vip else ''})",
            full,
            "playbooks/remove_node.yml",
            "-e",
            f"remove_node={dead}",
        )
        assert process.returncode == 0, process.stdout[-5000:]
        assert recap[dead]["unreachable"] == 0 and "etcd will have 2 members" in process.stderr  # a warning
        assert f"remove etcd member {dead}" in process.stdout
        stay = stay[:-1]
        assert etcd_members(lab, stay[0]) == stay
        nodes_ready(lab, stay[0], stay + ["worker1"])

        # 5. The VIP holder removed in step 2 joins again; the others change nothing.
        back = sorted(stay + [holder])
        process, recap = step(
            f"site.yml, {holder} joins again", inventory_of(lab, tmp_path / "rejoin", back), "playbooks/site.yml"
        )
        assert_ok(process, recap, back + ["worker1"])
        assert unchanged(recap, stay + ["worker1"]) == {}, recap
        assert recap[holder]["changed"], recap
        assert etcd_members(lab, stay[0]) == back
        nodes_ready(lab, stay[0], back + ["worker1"])
    finally:
        poller.stop()
    print(
        "day 2 nodes: "
        + "; ".join(
            f"{what} {seconds:.1f} s" + (f" (longest VIP gap {gaps[what]:.1f} s)" if what in gaps else "")
            for what, seconds in figures.items()
        )
        + f"; VIP polled every 0.1 s from the removals on: {poller.failures} of {poller.probes} probes failed"
    )
    assert gaps[left] < 10, f"the VIP did not answer for {gaps[left]:.1f} s while its holder left"
