# -*- coding: utf-8 -*-
"""The preflight module: refusals, BGP peers whose passwords (only) are hidden (reliability R4), and the Service
addresses of kube-vip's services mode."""

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


# kube-vip's services mode: the settings the preflight role passes (services, services_election, services_addresses)
def test_services_with_addresses_in_the_subnet_pass(capsys):
    result = run_module(capsys, services=True, services_election=True,
                        services_addresses=["198.51.100.200-198.51.100.210", "198.51.100.224/28"])
    assert result.get("failed") is not True, result
    assert result["init_host"] == "cp1" and result["changed"] is False


def test_addresses_outside_the_subnet_or_on_the_vip_are_refused_each_with_its_sentence(capsys):
    result = run_module(capsys, services=True, services_addresses=["203.0.113.10", "198.51.100.254"])
    assert result["failed"] is True
    assert result["msg"].startswith("Preflight refused, nothing was changed:\n- ")
    assert len(result["errors"]) == 2, result["errors"]
    assert result["errors"][0].startswith("kube_vip_services_addresses: 198.51.100.254 is the control plane VIP")
    assert result["errors"][1].startswith("kube_vip_services_addresses: 203.0.113.10 is outside the subnet of the "
                                          "VIP interface of cp1, cp2 and cp3 (eth0: 198.51.100.0/24)")


def test_the_election_without_services_is_refused(capsys):
    result = run_module(capsys, services_election=True)
    assert result["failed"] is True
    assert result["errors"] == [
        "kube_vip_services_election is true but kube_vip_services is false: the per-Service election is part of "
        "kube-vip's services mode; set kube_vip_services: true, or drop kube_vip_services_election."]
