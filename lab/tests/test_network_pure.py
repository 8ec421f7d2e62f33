"""The lab network's pure parts: DNS answers, CNI configuration, pod routes, kubeconfig fields."""

from __future__ import annotations

import json
import socket
import struct

import pytest

from lab.network import dns, pods

NAMES = {"cp1": "198.51.100.11", "controller": "198.51.100.1"}


def _query(name: str, qtype: int = dns.TYPE_A, ident: int = 0x1234, flags: int = 0x0100) -> bytes:
    labels = b"".join(bytes([len(part)]) + part.encode() for part in name.split(".") if part)
    return struct.pack("!HHHHHH", ident, flags, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", qtype, 1)


def _header(response: bytes):
    return struct.unpack("!HHHHHH", response[:12])


def test_a_lab_name_gets_its_address():
    response = dns.answer(_query("cp1"), NAMES)
    ident, flags, qd, an, _, _ = _header(response)
    assert ident == 0x1234 and flags & 0x8000 and flags & 0x000F == 0 and (qd, an) == (1, 1)
    assert socket.inet_ntoa(response[-4:]) == "198.51.100.11"


def test_names_are_case_insensitive_and_may_end_with_a_dot():
    assert socket.inet_ntoa(dns.answer(_query("CP1."), NAMES)[-4:]) == "198.51.100.11"


def test_any_other_name_is_nxdomain_at_once():
    _, flags, _, an, _, _ = _header(dns.answer(_query("registry.k8s.io"), NAMES))
    assert flags & 0x000F == dns.RCODE_NXDOMAIN and an == 0


def test_a_known_name_without_a_record_of_that_type_is_nodata():
    _, flags, _, an, _, _ = _header(dns.answer(_query("cp1", qtype=28), NAMES))  # AAAA
    assert flags & 0x000F == 0 and an == 0


@pytest.mark.parametrize("packet", [b"", b"\x00", b"\x12\x34" + b"\x00" * 4])
def test_malformed_queries_are_dropped_or_formerr(packet):
    response = dns.answer(packet, NAMES)
    assert response is None or _header(response + b"\0" * 12)[1] & 0x000F == dns.RCODE_FORMERR


def test_conflist_gives_the_nodes_pod_cidr_to_host_local():
    config = json.loads(pods.conflist("10.244.2.0/24"))
    bridge = config["plugins"][0]
    assert bridge["type"] == "bridge" and bridge["ipam"]["type"] == "host-local"
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.2.0/24"}]]
    assert bridge["ipMasq"] is False


def test_routes_go_to_every_other_node_whose_range_is_known():
    cidrs = {"cp1": "10.244.0.0/24", "cp2": "10.244.1.0/24", "worker1": "", "gone": "10.244.9.0/24"}
    addresses = {"cp1": "198.51.100.11", "cp2": "198.51.100.12", "worker1": "198.51.100.13"}
    assert pods.routes("cp1", cidrs, addresses) == [("10.244.1.0/24", "198.51.100.12")]
    assert pods.routes(None, cidrs, addresses) == [("10.244.0.0/24", "198.51.100.11"), ("10.244.1.0/24", "198.51.100.12")]


def test_kubeconfig_fields_as_kubeadm_writes_them():
    text = """apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://198.51.100.254:6443
  name: kubernetes
users:
- name: kubernetes-admin
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
"""
    assert pods.kubeconfig_fields(text) == {
        "certificate-authority-data": "Q0E=",
        "server": "https://198.51.100.254:6443",
        "client-certificate-data": "Q0VSVA==",
        "client-key-data": "S0VZ",
    }
