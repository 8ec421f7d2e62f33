# -*- coding: utf-8 -*-
"""The preflight module: refusals, and BGP peers whose passwords (only) are hidden (reliability R4)."""

import json
import os
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, ".collections"))
sys.path.insert(0, os.path.join(REPO, "tests", "unit", "fixtures"))

from module_main import run_main  # noqa: E402

from ansible_collections.vipadm.kubeadm.plugins.modules import preflight  # noqa: E402

CP = ["cp1", "cp2", "cp3"]


def report(name, address):
    return dict(hostname=name, address=address, interfaces={"eth0": [address + "/24"]}, default_interface="eth0",
                kubeadm_path="/usr/bin/kubeadm", cluster_state="none", vip_tcp_answers=False, vip_arp_answers=False)


def run_module(capsys, **args):
    args = dict(vip="198.51.100.254", kubernetes_version="1.32.4", control_planes=CP,
                nodes={name: report(name, "198.51.100.%d" % (11 + i)) for i, name in enumerate(CP)}, **args)
    return run_main(preflight, args, capsys)


def test_a_malformed_bgp_peer_is_refused_with_its_address_and_as_readable_and_its_password_hidden(capsys):
    peers = [{"address": "10.0.0.1", "as": 65000, "password": "g00dpeerpw"},
             {"address": "router-b", "as": "sixty", "password": "b4dpeerpw"}]
    result = run_module(capsys, mode="bgp", bgp_peers=peers)
    assert result["failed"] is True
    assert "BGP peer 2: 'router-b' is not an IP address" in result["msg"]
    assert "BGP peer 2: AS 'sixty' is not a number" in result["msg"]
    text = json.dumps(result)
    assert "g00dpeerpw" not in text and "b4dpeerpw" not in text
    assert "10.0.0.1" in text  # the well-formed peer's address is not masked either


def test_text_form_peer_password_is_hidden_and_the_rest_readable(capsys):
    result = run_module(capsys, mode="bgp", bgp_peers="10.0.0.1:65000:t3xtpw:maybe")
    assert "BGP peer 1: multihop 'maybe' is not true or false" in result["msg"]
    assert "t3xtpw" not in json.dumps(result)
    assert "10.0.0.1:65000:" in json.dumps(result["invocation"])


def test_well_formed_peers_pass_and_return_the_init_host(capsys):
    result = run_module(capsys, mode="bgp", bgp_peers=[{"address": "10.0.0.1", "as": 65000, "password": "pw12345"}])
    assert result.get("failed") is not True, result
    assert result["init_host"] == "cp1"
    assert "pw12345" not in json.dumps(result)
