# -*- coding: utf-8 -*-
"""preflight_facts on a bare node: the ARP probe runs while the TCP probe waits, and only on a bare node."""

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

ADDR = json.dumps([{"ifname": "eth0", "addr_info": [{"family": "inet", "local": "198.51.100.11", "prefixlen": 24}]}])
ROUTE = json.dumps([{"dst": "default", "gateway": "198.51.100.1", "dev": "eth0"}])
VIP = "198.51.100.254"


def run(capsys, tmp_path, arping_rc, tcp_answers, files=(), arp_wait=5.0):
    """Run the module with fake `ip`/`arping` commands; the TCP probe waits (up to arp_wait s) for arping to start."""
    arping_started, commands = threading.Event(), []

    def run_command(self, args, **kwargs):
        commands.append(list(args))
        if args[1:3] == ["-j", "addr"]:
            return 0, ADDR, ""
        if args[1:3] == ["-j", "route"]:
            return 0, ROUTE, ""
        assert args[0].endswith("arping") and args[-1] == VIP and "-D" in args
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
            mock.patch.object(preflight_facts._preflight, "KUBEADM_FILES", [str(tmp_path / f) for f in files]):
        for name in files:
            (tmp_path / name).write_text("x")
        result = run_main(preflight_facts, {"vip": VIP, "probe_arp": True}, capsys)
    return result, overlapped, commands


@pytest.mark.parametrize("arping_rc, answers", [(0, False), (1, True)])
def test_bare_node_probes_arp_while_tcp_waits(capsys, tmp_path, arping_rc, answers):
    result, overlapped, commands = run(capsys, tmp_path, arping_rc, tcp_answers=False)
    assert overlapped == [True], "the ARP probe did not run while the TCP probe waited"
    assert (result["cluster_state"], result["vip_tcp_answers"], result["vip_arp_answers"]) == ("none", False, answers)
    assert result["default_interface"] == "eth0" and sum("arping" in c[0] for c in commands) == 1


def test_arp_result_is_kept_when_tcp_answers_too(capsys, tmp_path):
    result, _, _ = run(capsys, tmp_path, 1, tcp_answers=True)
    assert (result["vip_tcp_answers"], result["vip_arp_answers"]) == (True, True)


def test_node_with_kubeadm_files_gets_no_arp_probe(capsys, tmp_path):
    result, overlapped, commands = run(capsys, tmp_path, 1, tcp_answers=False, files=["admin.conf"], arp_wait=0.3)
    assert overlapped == [False] and not any("arping" in c[0] for c in commands)
    assert result["vip_arp_answers"] is None and result["cluster_state"] != "none"
