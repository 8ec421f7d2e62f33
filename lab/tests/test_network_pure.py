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


def test_a_dual_stack_node_gets_a_range_and_a_default_route_of_each_family():
    config = json.loads(pods.conflist(["10.244.2.0/24", "2001:db8:1:2::/64"]))
    ipam = config["plugins"][0]["ipam"]
    assert ipam["ranges"] == [[{"subnet": "10.244.2.0/24"}], [{"subnet": "2001:db8:1:2::/64"}]]
    assert ipam["routes"] == [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]


def test_routes_go_via_the_node_address_of_the_range_family():
    cidrs = {"cp1": ["10.244.0.0/24", "2001:db8:1::/64"], "cp2": ["2001:db8:1:1::/64"], "cp3": ["10.244.2.0/24"]}
    addresses = {"cp1": ["198.51.100.11", "2001:db8:c633:6400::b"], "cp2": ["198.51.100.12", "2001:db8:c633:6400::c"],
                 "cp3": ["198.51.100.13", ""]}
    assert pods.routes("cp3", cidrs, addresses) == [
        ("10.244.0.0/24", "198.51.100.11"), ("2001:db8:1:1::/64", "2001:db8:c633:6400::c"),
        ("2001:db8:1::/64", "2001:db8:c633:6400::b")]
    # a node without an address of a range's family gets no route for it (the DNS namespace: IPv4 only)
    assert pods.routes(None, cidrs, {"cp1": "198.51.100.11", "cp2": "198.51.100.12"}) == [
        ("10.244.0.0/24", "198.51.100.11")]


# --- the controller's guard (a classic BPF program for tc), run on sample frames --------------------------

def _run_bpf(bytecode: str, frame: bytes) -> int:
    """A classic BPF interpreter for the instructions the guard uses; returns the tc action."""
    program = [tuple(int(field) for field in word.split()) for word in bytecode.split(",")[1:]]
    accumulator = index_register = pc = 0
    while True:
        code, jt, jf, k = program[pc]
        pc += 1
        if code == 0x28:
            accumulator = struct.unpack_from("!H", frame, k)[0]
        elif code == 0x30:
            accumulator = frame[k]
        elif code == 0x50:
            accumulator = frame[index_register + k]
        elif code == 0xB1:
            index_register = 4 * (frame[k] & 0x0F)
        elif code == 0x54:
            accumulator &= k
        elif code in (0x15, 0x45):
            taken = accumulator == k if code == 0x15 else bool(accumulator & k)
            pc += jt if taken else jf
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"opcode {code:#x} is not one the guard should use")


def _ethernet(ethertype: int, payload: bytes) -> bytes:
    return b"\x02" * 6 + b"\x04" * 6 + struct.pack("!H", ethertype) + payload


def _ipv4(protocol: int, payload: bytes) -> bytes:
    return bytes([0x45, 0, 0, 20 + len(payload), 0, 0, 0, 0, 64, protocol, 0, 0]) + b"\xc6\x33\x64\x0b" + \
        b"\xc6\x33\x64\x01" + payload


def _ipv6(next_header: int, payload: bytes) -> bytes:
    return struct.pack("!IHBB", 6 << 28, len(payload), next_header, 255) + b"\x20\x01\x0d\xb8" + b"\0" * 12 + \
        b"\x20\x01\x0d\xb8" + b"\0" * 11 + b"\x01" + payload


def _tcp(flags: int) -> bytes:
    return struct.pack("!HHIIBBHHH", 40000, 22, 1, 0, 5 << 4, flags, 1024, 0, 0)


SYN, ACK = 0x02, 0x10


@pytest.mark.parametrize(("what", "frame", "action"), [
    ("ARP", _ethernet(0x0806, b"\0" * 28), 0),
    ("IPv4 echo request", _ethernet(0x0800, _ipv4(1, b"\x08\0" + b"\0" * 6)), 2),
    ("IPv4 echo reply", _ethernet(0x0800, _ipv4(1, b"\x00\0" + b"\0" * 6)), 0),
    ("IPv4 SYN", _ethernet(0x0800, _ipv4(6, _tcp(SYN))), 2),
    ("IPv4 SYN-ACK", _ethernet(0x0800, _ipv4(6, _tcp(SYN | ACK))), 0),
    ("IPv4 ACK", _ethernet(0x0800, _ipv4(6, _tcp(ACK))), 0),
    ("IPv4 UDP", _ethernet(0x0800, _ipv4(17, b"\0" * 8)), 2),
    ("IPv6 neighbour solicitation", _ethernet(0x86DD, _ipv6(58, bytes([135, 0]) + b"\0" * 22)), 0),
    ("IPv6 neighbour advertisement", _ethernet(0x86DD, _ipv6(58, bytes([136, 0]) + b"\0" * 22)), 0),
    ("IPv6 echo request", _ethernet(0x86DD, _ipv6(58, bytes([128, 0]) + b"\0" * 6)), 2),
    ("IPv6 echo reply", _ethernet(0x86DD, _ipv6(58, bytes([129, 0]) + b"\0" * 6)), 0),
    ("IPv6 SYN", _ethernet(0x86DD, _ipv6(6, _tcp(SYN))), 2),
    ("IPv6 SYN-ACK", _ethernet(0x86DD, _ipv6(6, _tcp(SYN | ACK))), 0),
    ("IPv6 ACK", _ethernet(0x86DD, _ipv6(6, _tcp(ACK))), 0),
    ("IPv6 UDP", _ethernet(0x86DD, _ipv6(17, b"\0" * 8)), 2),
    ("IPv6 hop-by-hop first", _ethernet(0x86DD, _ipv6(0, b"\0" * 8)), 2),
    ("another EtherType", _ethernet(0x88CC, b"\0" * 40), 2),
])  # fmt: skip
def test_the_guard_lets_nodes_answer_but_not_open_connections(what, frame, action):
    from lab.network.bridge import CONTROLLER_GUARD_BPF

    assert _run_bpf(CONTROLLER_GUARD_BPF, frame) == action, what


def test_the_assembler_refuses_a_backward_jump():
    from lab.network.bridge import assemble

    with pytest.raises(ValueError, match="forward only"):
        assemble([("top", "ldh", 12, None, None), (None, "jeq", 1, "top", None), (None, "ret", 0, None, None)])
