# -*- coding: utf-8 -*-
"""preflight_facts on a bare node: the ARP probe runs while the TCP probe waits, and only on a bare node; a
kubeadm init left running by a stopped run is waited for before the node's files are read."""

import json
import os
import sys
import threading
from unittest import mock

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, ".collections"))
sys.path.insert(0, os.path.join(REPO, "tests", "unit", "fixtures"))

from ansible.module_utils import basic  # noqa: E402
from module_main import run_main  # noqa: E402

from ansible_collections.vipadm.kubeadm.plugins.modules import preflight_facts  # noqa: E402

ADDR = json.dumps([{"ifname": "lo", "link_type": "loopback", "address": "00:00:00:00:00:00", "addr_info": []},
                   {"ifname": "eth0", "link_type": "ether", "address": "02:AB:CD:EF:01:0B",
                    "addr_info": [{"family": "inet", "local": "198.51.100.11", "prefixlen": 24}]}])
ROUTE = json.dumps([{"dst": "default", "gateway": "198.51.100.1", "dev": "eth0"}])
VIP = "198.51.100.254"


def run(capsys, tmp_path, arping_rc, tcp_answers, files=(), arp_wait=5.0, processes=lambda: iter(()), args=None,
        write_files=True, versions=None, holders=None):
    """Run the module with fake `ip`/`arping`/`kubeadm`/`kubelet` commands; the TCP probe waits (up to arp_wait s)
    for arping to start. versions: argv tail -> (rc, stdout) of the version commands; holders: address other than
    the VIP -> Ethernet address that arping hears answer for it."""
    arping_started, commands = threading.Event(), []
    versions = versions or {("version", "-o", "short"): (0, "v1.36.3\n"), ("--version",): (0, "Kubernetes v1.36.3\n")}

    def run_command(self, args, **kwargs):
        commands.append(list(args))
        if args[1:3] == ["-j", "addr"]:
            return 0, ADDR, ""
        if args[1:3] == ["-j", "route"]:
            return 0, ROUTE, ""
        if args[0].endswith(("kubeadm", "kubelet")):
            rc, out = versions[tuple(args[1:])]
            return rc, out, ""
        assert args[0].endswith("arping") and "-D" in args
        if args[-1] != VIP:
            mac = (holders or {}).get(args[-1])
            return (1, "Unicast reply from %s [%s]  0.5ms\n" % (args[-1], mac), "") if mac else (0, "", "")
        arping_started.set()
        return arping_rc, "", ""

    def tcp(vip, port, timeout):
        # Sequential probes would reach here before arping starts: then this reports "overlap": False.
        overlapped.append(arping_started.wait(arp_wait))
        return tcp_answers

    overlapped = []
    bin_path = lambda self, name, *a, **k: "/usr/bin/" + name  # noqa: E731
    with mock.patch.object(basic.AnsibleModule, "run_command", run_command), \
            mock.patch.object(basic.AnsibleModule, "get_bin_path", bin_path), \
            mock.patch.object(preflight_facts, "_tcp_answers", tcp), \
            mock.patch.object(preflight_facts, "_processes", processes), \
            mock.patch.object(preflight_facts._preflight, "KUBEADM_FILES", [str(tmp_path / f) for f in files]):
        for name in files if write_files else ():
            (tmp_path / name).write_text("x")
        result = run_main(preflight_facts, dict({"vip": VIP, "probe_arp": True}, **(args or {})), capsys)
    return result, overlapped, commands


@pytest.mark.parametrize("arping_rc, answers", [(0, False), (1, True)])
def test_bare_node_probes_arp_while_tcp_waits(capsys, tmp_path, arping_rc, answers):
    result, overlapped, commands = run(capsys, tmp_path, arping_rc, tcp_answers=False)
    assert overlapped == [True], "the ARP probe did not run while the TCP probe waited"
    assert (result["cluster_state"], result["vip_tcp_answers"], result["vip_arp_answers"]) == ("none", False, answers)
    assert result["default_interface"] == "eth0" and sum("arping" in c[0] for c in commands) == 1


@pytest.mark.parametrize("versions, kubeadm, kubelet", [
    (None, "v1.36.3", "Kubernetes v1.36.3"),
    ({("version", "-o", "short"): (1, "v1.37.2\n"), ("--version",): (0, "")}, None, None),
])
def test_reports_the_installed_kubeadm_and_kubelet_versions(capsys, tmp_path, versions, kubeadm, kubelet):
    result, _, commands = run(capsys, tmp_path, 0, tcp_answers=False, versions=versions)
    assert (result["kubeadm_version"], result["kubelet_version"]) == (kubeadm, kubelet)
    assert ["/usr/bin/kubeadm", "version", "-o", "short"] in commands and ["/usr/bin/kubelet", "--version"] in commands


def test_arp_result_is_kept_when_tcp_answers_too(capsys, tmp_path):
    result, _, _ = run(capsys, tmp_path, 1, tcp_answers=True)
    assert (result["vip_tcp_answers"], result["vip_arp_answers"]) == (True, True)


def test_node_with_kubeadm_files_gets_no_arp_probe(capsys, tmp_path):
    result, overlapped, commands = run(capsys, tmp_path, 1, tcp_answers=False, files=["admin.conf"], arp_wait=0.3)
    assert overlapped == [False] and not any("arping" in c[0] for c in commands)
    assert result["vip_arp_answers"] is None and result["cluster_state"] != "none"


class InitOnTheNode:
    """/proc of a node on which a kubeadm init (left by a killed controller) runs for `polls` more looks, then
    writes the files of a finished control plane and ends. Sleeping is instant (time.sleep patched)."""

    FINISHED = ("apiserver.yaml", "etcd.yaml", "kubelet.conf", "admin.conf")

    def __init__(self, tmp_path, polls):
        self.tmp_path, self.polls, self.looks = tmp_path, polls, 0
        (tmp_path / "admin.conf").write_text("x")  # init under way: a partial node so far

    def __call__(self):
        self.looks += 1
        if self.looks <= self.polls:
            return iter([(1, ["/sbin/init"]), (286, ["/usr/bin/kubeadm", "init", "--config", "/x.yaml"])])
        for name in self.FINISHED:
            (self.tmp_path / name).write_text("x")
        return iter([(1, ["/sbin/init"])])


def test_a_running_kubeadm_init_is_waited_for_before_the_state_is_read(capsys, tmp_path):
    """Seen on real components: the controller killed as kubeadm init started, the next run at once: the
    node read as 'partial' and was reset under the running init, which went on after the run."""
    init = InitOnTheNode(tmp_path, polls=3)
    with mock.patch.object(preflight_facts.time, "sleep", lambda s: None):
        result, _, _ = run(capsys, tmp_path, 0, tcp_answers=True, files=InitOnTheNode.FINISHED, processes=init,
                           write_files=False)
    assert init.looks == 4
    # the files the init left once it ended, not the admin.conf alone it had written when the run came
    assert sorted(os.path.basename(f) for f in result["kubeadm_files"]) == sorted(InitOnTheNode.FINISHED), result
    assert result["kubeadm_running"] == []
    warnings = json.dumps(result["warnings"])  # strings or warning events, by Ansible release
    assert "kubeadm init (PID 286) was still running on this node" in warnings and "it ended" in warnings, result


def test_a_kubeadm_init_that_outlasts_the_timeout_is_reported(capsys, tmp_path):
    init = InitOnTheNode(tmp_path, polls=10 ** 6)
    clock = iter(range(0, 10 ** 6, 1))
    with mock.patch.object(preflight_facts.time, "sleep", lambda s: None), \
            mock.patch.object(preflight_facts.time, "monotonic", lambda: float(next(clock))):
        result, _, _ = run(capsys, tmp_path, 0, tcp_answers=True, processes=init, args={"kubeadm_timeout": 5})
    assert result["kubeadm_running"] == ["kubeadm init (PID 286)"] and result["kubeadm_waited"] >= 5
    assert init.looks <= 7


@pytest.mark.parametrize("files", [(), ("admin.conf", "kubelet.conf", "etcd.yaml", "kube-apiserver.yaml")],
                         ids=["bare node", "control plane of a cluster"])
def test_service_addresses_are_probed_on_every_run_and_report_who_answered(capsys, tmp_path, files):
    args = {"services_addresses": ["198.51.100.200-198.51.100.203", "198.51.100.210"]}
    holders = {"198.51.100.201": "02:AA:00:00:00:01", "198.51.100.210": "02:00:00:00:00:0c"}
    result, _, commands = run(capsys, tmp_path, 0, tcp_answers=bool(files), files=files, args=args, holders=holders,
                              arp_wait=0.0)
    probed = sorted(c[-1] for c in commands if c[0].endswith("arping") and c[-1] != VIP)
    assert probed == ["198.51.100.200", "198.51.100.201", "198.51.100.202", "198.51.100.203", "198.51.100.210"]
    assert result["services_answers"] == {"198.51.100.201": "02:aa:00:00:00:01", "198.51.100.210": "02:00:00:00:00:0c"}
    assert result["interface_macs"] == {"eth0": "02:ab:cd:ef:01:0b"}


def test_service_addresses_are_not_probed_without_probe_arp(capsys, tmp_path):
    result, _, commands = run(capsys, tmp_path, 0, tcp_answers=False, arp_wait=0.0,
                              args={"probe_arp": False, "services_addresses": ["198.51.100.200"]})
    assert not [c for c in commands if c[0].endswith("arping")] and result["services_answers"] == {}
