"""Neighbor Discovery packets of the IPv6 VIP probe (RFC 4861)."""
import ipaddress
import os
import struct
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _ndp  # noqa: E402

VIP = "2001:db8:c633:6400::fe"


def test_the_solicited_node_group_takes_the_last_24_bits():
    assert str(_ndp.solicited_node_group(VIP)) == "ff02::1:ff00:fe"
    assert str(_ndp.solicited_node_group("2001:db8::1234:5678")) == "ff02::1:ff34:5678"


def test_a_solicitation_names_the_target_and_our_link_layer_address():
    message = _ndp.neighbor_solicitation(VIP, "02:ab:cd:ef:01:0b")
    kind, code, checksum, reserved = struct.unpack("!BBHI", message[:8])
    assert (kind, code, checksum, reserved) == (135, 0, 0, 0)
    assert ipaddress.IPv6Address(message[8:24]) == ipaddress.IPv6Address(VIP)
    assert message[24:] == bytes([1, 1, 0x02, 0xAB, 0xCD, 0xEF, 0x01, 0x0B])
    assert len(_ndp.neighbor_solicitation(VIP)) == 24


def test_a_malformed_link_layer_address_is_refused():
    with pytest.raises(ValueError, match="not an Ethernet address"):
        _ndp.neighbor_solicitation(VIP, "02:ab:cd")


def test_only_an_advertisement_gives_its_target_and_the_answering_machine():
    target = ipaddress.IPv6Address(VIP).packed
    advertisement = struct.pack("!BBHI", 136, 0, 0x1234, 0x60000000) + target + bytes([2, 1, 2, 0, 0, 0, 0, 1])
    assert _ndp.advertisement(advertisement) == (ipaddress.IPv6Address(VIP), "02:00:00:00:00:01")
    assert _ndp.advertisement(advertisement[:24]) == (ipaddress.IPv6Address(VIP), None)  # no option
    assert _ndp.advertisement(struct.pack("!BBHI", 135, 0, 0, 0) + target) is None  # a solicitation
    assert _ndp.advertisement(struct.pack("!BBHI", 129, 0, 0, 0) + target) is None  # an echo reply
    assert _ndp.advertisement(advertisement[:20]) is None  # truncated


def test_the_link_layer_option_is_found_after_others_and_a_zero_length_option_ends_the_walk():
    target = ipaddress.IPv6Address(VIP).packed
    head = struct.pack("!BBHI", 136, 0, 0, 0x60000000) + target
    nonce = bytes([14, 1, 1, 2, 3, 4, 5, 6])  # another option of 8 bytes first
    mac = bytes([2, 1, 0x0A, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF])
    assert _ndp.advertisement(head + nonce + mac) == (ipaddress.IPv6Address(VIP), "0a:bb:cc:dd:ee:ff")
    assert _ndp.advertisement(head + bytes([14, 0, 0, 0, 0, 0, 0, 0]) + mac)[1] is None
    assert _ndp.advertisement(head + mac[:5])[1] is None  # truncated option
