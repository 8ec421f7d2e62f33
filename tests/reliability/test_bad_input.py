# -*- coding: utf-8 -*-
"""Bad input: site.yml refuses each case before anything changes, with a message that names the problem.

One bare real lab (2 control planes, 1 worker: containerd running, the real kubeadm and kubelet
installed, nothing bootstrapped) for the whole module; each case is one `ansible-playbook
playbooks/site.yml` with its own extra variables or inventory. After each case every node must be exactly
as before (kubeadm and kubelet files with their digests, unit links, systemctl calls that change
something, addresses), no play after the preflight may have started, and no kubeadm call may have run.
A third control plane adds nothing to a refusal. Cost: about 5 s per case, 2-3 min for the module.
"""

from __future__ import annotations

import ipaddress
import re

import pytest

from reliability_lab import SITE, kubeadm_calls, kubeadm_inits, record_kubeadm_calls, run_playbook, snapshots, write_inventory

pytestmark = [pytest.mark.lab, pytest.mark.reliability]

REFUSED = "Preflight refused, nothing was changed"
FIRST_CHANGING_PLAY = "Steps 1-6"


@pytest.fixture(scope="module")
def bare_lab(module_lab):
    lab = module_lab(control_planes=2, workers=1)
    record_kubeadm_calls(lab)
    return lab


def outside_address(lab):
    """An address of 198.51.100.0/24 outside this lab's /27 slice that no lab uses: the 29th host of a
    neighbouring slice (a lab's nodes start at the 11th host, its VIP is the 30th)."""
    own = ipaddress.ip_network(lab.nodes[0].address + "/27", strict=False)
    step = 32 if own.network_address.packed[3] < 224 else -32
    return str(own.network_address + step + 29)


def node_address(lab, name):
    return next(node.address for node in lab.nodes if node.name == name)


def inventory_case(tmp_path, lab, groups, host_addresses=None):
    return dict(inventory=write_inventory(tmp_path / "inventory", lab, groups, host_addresses))


# (case id, how to build the run's arguments from (lab, tmp_path), pattern the refusal must contain)
CASES = [
    ("vip_malformed", lambda lab, tmp: dict(extra={"kube_vip_address": "198.51.100.300"}),
     r"kube_vip_address '198\.51\.100\.300' is not an IP address"),
    ("vip_not_set", lambda lab, tmp: dict(extra={"kube_vip_address": ""}),
     r"kube_vip_address is not set"),
    ("vip_is_a_node_address", lambda lab, tmp: dict(extra={"kube_vip_address": node_address(lab, "cp2")}),
     r"cp2: kube_vip_address \S+ is the node's own address"),
    ("vip_outside_interface_subnet", lambda lab, tmp: dict(extra={"kube_vip_address": outside_address(lab)}),
     r"cp1: kube_vip_address \S+ is outside the subnet of eth0"),
    ("interface_missing", lambda lab, tmp: dict(extra={"kube_vip_interface": "eth9"}),
     r"cp1: interface eth9 does not exist \(the node has eth0, lo\)"),
    ("duplicate_hosts", lambda lab, tmp: inventory_case(
        tmp, lab, {"control_plane": ["cp1", "cp2", "cp3"], "workers": ["worker1"]}, {"cp3": "cp2"}),
     r"cp2, cp3 report the same hostname 'cp2'"),
    ("host_in_both_groups", lambda lab, tmp: inventory_case(
        tmp, lab, {"control_plane": ["cp1", "cp2"], "workers": ["worker1", "cp2"]}),
     r"cp2 are in both control_plane and workers"),
    ("no_control_plane_group", lambda lab, tmp: inventory_case(
        tmp, lab, {"masters": ["cp1", "cp2"], "workers": ["worker1"]}),
     r"The inventory has no control_plane group"),
    ("init_host_not_a_control_plane", lambda lab, tmp: dict(extra={"control_plane_init_host": "worker1"}),
     r"control_plane_init_host 'worker1' is not in the control_plane group"),
    ("kubernetes_too_old", lambda lab, tmp: dict(extra={"vipadm_kubernetes_version": "1.28.9"}),
     r"Kubernetes 1\.28\.9 is not supported"),
    ("kubernetes_too_new", lambda lab, tmp: dict(extra={"vipadm_kubernetes_version": "1.38.0"}),
     r"Kubernetes 1\.38\.0 is not supported"),
    ("kubernetes_not_a_version", lambda lab, tmp: dict(extra={"vipadm_kubernetes_version": "latest"}),
     r"vipadm_kubernetes_version 'latest' is not a version"),
    ("kube_vip_unsupported", lambda lab, tmp: dict(extra={"kube_vip_version": "v0.6.4"}),
     r"kube-vip v0\.6\.4 is not supported"),
    ("bgp_without_peers", lambda lab, tmp: dict(extra={"kube_vip_mode": "bgp", "kube_vip_bgp_peers": []}),
     r"BGP mode needs peers"),
    ("bgp_peer_malformed", lambda lab, tmp: dict(extra={"kube_vip_mode": "bgp", "kube_vip_bgp_peers": [
        {"address": "198.51.100.9", "as": 65000}, {"address": "router-b", "as": "sixty", "password": "Pw-m4lformed"}]}),
     # Since R4 the preflight module hides only the passwords: the refusal shows the address and the AS.
     r"BGP peer 2: 'router-b' is not an IP address; BGP peer 2: AS 'sixty' is not a number"),
    ("bgp_peer_malformed_text", lambda lab, tmp: dict(extra={"kube_vip_mode": "bgp",
                                                             "kube_vip_bgp_peers": "198.51.100.9:65000:Pw-t3xt:maybe"}),
     r"BGP peer 1: multihop 'maybe' is not true or false"),
    ("port_out_of_range", lambda lab, tmp: dict(extra={"kube_vip_port": 70000}),
     r"kube_vip_port 70000 is out of range"),
    ("port_zero", lambda lab, tmp: dict(extra={"kube_vip_port": 0}),
     r"kube_vip_port 0 is out of range"),
]
# Passwords of the malformed peers above: a refusal names the peer by position, never by its text.
PEER_PASSWORDS = ("Pw-m4lformed", "Pw-t3xt")


def assert_refused_and_unchanged(lab, run, before, pattern):
    assert run.rc != 0, run
    assert REFUSED in run.output, run
    assert re.search(pattern, run.output), "the refusal does not name the problem (%s):\n%r" % (pattern, run)
    assert not any(FIRST_CHANGING_PLAY in play for play in run.plays()), run
    assert all(counts["changed"] == 0 for counts in run.recap.values()), run.recap
    after = snapshots(lab)
    for node, state in before.items():
        assert after[node] == state, "%s changed during a refused run" % node
    for node in lab.nodes:
        assert kubeadm_calls(lab, node.name) == [], "kubeadm ran on %s during a refused run" % node.name


@pytest.mark.parametrize("case, arguments, pattern", CASES, ids=[case[0] for case in CASES])
def test_refused_before_any_change(bare_lab, tmp_path, case, arguments, pattern):
    before = snapshots(bare_lab)
    run = run_playbook(bare_lab, timeout=120, **arguments(bare_lab, tmp_path))
    assert_refused_and_unchanged(bare_lab, run, before, pattern)
    for password in PEER_PASSWORDS:
        assert password not in run.output, "a BGP peer password is in the output of %s" % case
    # one host is one node: a host listed twice is never "two nodes with the same hostname"
    assert not re.search(r"\b(\w+), \1 report the same hostname", run.output), run


def test_refused_when_the_vip_is_already_in_use(bare_lab):
    """Another machine holds the VIP: worker1 carries it as a /32 (so it is not 'a node address' of the
    subnet), answers ARP for it and refuses TCP on 6443; the control planes see it."""
    holder = "worker1"
    bare_lab.exec(holder, ["ip", "addr", "add", bare_lab.vip + "/32", "dev", "eth0"], check=True)
    try:
        before = snapshots(bare_lab)
        run = run_playbook(bare_lab, timeout=120)
        assert_refused_and_unchanged(
            bare_lab, run, before, r"kube_vip_address %s already answers \(seen from [^)]*cp1" % re.escape(bare_lab.vip))
    finally:
        bare_lab.exec(holder, ["ip", "addr", "del", bare_lab.vip + "/32", "dev", "eth0"], check=True)


def test_empty_workers_group_is_fine(bare_lab, tmp_path):
    """An empty workers group passes the preflight; the check-mode run previews the bootstrap of the
    control planes and changes nothing."""
    inventory = write_inventory(tmp_path / "inventory", bare_lab, {"control_plane": ["cp1", "cp2"], "workers": []})
    before = snapshots(bare_lab)
    run = run_playbook(bare_lab, SITE, "--check", inventory=inventory, timeout=300)
    assert run.rc == 0, run
    assert REFUSED not in run.output, run
    assert any(FIRST_CHANGING_PLAY in play for play in run.plays()), run
    assert set(run.recap) == {"cp1", "cp2"}, run.recap
    assert snapshots(bare_lab) == before
    for node in bare_lab.nodes:
        assert kubeadm_inits(bare_lab, node.name) == [], "check mode ran kubeadm init on %s" % node.name
