# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a machine on the link holds an IPv6 address: IPv6's ARP, Neighbor Discovery (RFC 4861).

A Neighbor Solicitation for the address goes to its solicited-node multicast group; whoever holds the
address answers with a Neighbor Advertisement naming it as its target. kube-vip holds an IPv6 VIP this way
(it adds the address and sends unsolicited advertisements), so a VIP that a machine already answers for is
taken. The packet functions are pure; ``answers`` sends and listens on a raw ICMPv6 socket (root).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import select
import socket
import struct
import time

NEIGHBOR_SOLICITATION = 135
NEIGHBOR_ADVERTISEMENT = 136
OPTION_SOURCE_LINK_LAYER_ADDRESS = 1
# Neighbor Discovery messages carry hop limit 255, and receivers drop any other (proof of an on-link sender).
HOP_LIMIT = 255


def solicited_node_group(address):
    """ff02::1:ffXX:XXXX, the multicast group of the address's last 24 bits."""
    low = int(ipaddress.IPv6Address(address)) & 0xFFFFFF
    return ipaddress.IPv6Address(int(ipaddress.IPv6Address("ff02::1:ff00:0")) | low)


def neighbor_solicitation(target, source_mac=None):
    """The ICMPv6 message (checksum 0: the kernel fills it in for raw ICMPv6 sockets) that asks who holds target,
    with our link-layer address as an option so the holder can answer at once."""
    message = struct.pack("!BBHI", NEIGHBOR_SOLICITATION, 0, 0, 0) + ipaddress.IPv6Address(target).packed
    if source_mac:
        mac = bytes(int(part, 16) for part in source_mac.split(":"))
        if len(mac) != 6:
            raise ValueError("%r is not an Ethernet address" % source_mac)
        message += struct.pack("!BB", OPTION_SOURCE_LINK_LAYER_ADDRESS, 1) + mac
    return message


OPTION_TARGET_LINK_LAYER_ADDRESS = 2


def advertisement(message):
    """(target address, Ethernet address of the answering machine or None) of a Neighbor Advertisement (an ICMPv6
    message as a raw socket reads it), else None. The Ethernet address is the Target Link-Layer Address option's,
    which an answer to a multicast solicitation carries (RFC 4861, 7.2.4)."""
    if len(message) < 24 or message[0] != NEIGHBOR_ADVERTISEMENT or message[1] != 0:
        return None
    target, mac = ipaddress.IPv6Address(message[8:24]), None
    offset = 24
    while offset + 2 <= len(message):
        kind, units = message[offset], message[offset + 1]
        if units == 0:  # malformed: a length of 0 would never end
            break
        if kind == OPTION_TARGET_LINK_LAYER_ADDRESS and units == 1 and offset + 8 <= len(message):
            mac = ":".join("%02x" % octet for octet in bytearray(message[offset + 2:offset + 8]))
        offset += units * 8
    return target, mac


def holder(address, interface, timeout, mac=None):
    """The Ethernet address of the machine on interface that answers a solicitation for address within timeout
    seconds ('' when its advertisement names none), None when nobody answers. Two solicitations (the second
    halfway), as a lost packet should not make a taken address look free."""
    target = ipaddress.IPv6Address(address)
    index = socket.if_nametoindex(interface)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, HOP_LIMIT)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, HOP_LIMIT)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)  # this node's own answer does not count
        message = neighbor_solicitation(target, mac)
        destination = (str(solicited_node_group(target)), 0, 0, index)
        started = time.monotonic()
        sends = [started, started + timeout / 2.0]
        while True:
            now = time.monotonic()
            if sends and now >= sends[0]:
                sends.pop(0)
                sock.sendto(message, destination)
            wait = min([started + timeout] + sends) - now
            if now >= started + timeout:
                return None
            ready, _w, _x = select.select([sock], [], [], max(wait, 0.0))
            if ready:
                found = advertisement(sock.recv(1500))
                if found and found[0] == target:
                    return found[1] or ""
    finally:
        sock.close()
