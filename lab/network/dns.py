"""The lab's DNS: answers A queries for the lab's names (nodes, the controller) and says NXDOMAIN to
everything else at once, so CoreDNS has an upstream that is not a loop, kubeadm's Hostname check
passes, and no look-up ever leaves the machine.

Runs as `python3 -I -S dns.py <zone.json>` inside the lab's DNS namespace (standard library only);
zone.json = {"listen": "<address>", "names": {"cp1": "198.51.100.11", ...}}.
"""

import json
import socket
import struct
import sys

TYPE_A = 1
CLASS_IN = 1
TTL = 30
RCODE_NXDOMAIN = 3
RCODE_FORMERR = 1
RCODE_NOTIMP = 4


def parse_question(packet):
    """(id, flags, name, qtype, qclass, end offset) of a query with one question; None when malformed."""
    if len(packet) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if qdcount != 1 or flags & 0x8000:
        return None
    labels, offset = [], 12
    while True:
        if offset >= len(packet):
            return None
        length = packet[offset]
        offset += 1
        if length == 0:
            break
        if length & 0xC0 or offset + length > len(packet):
            return None
        labels.append(packet[offset : offset + length].decode("ascii", "replace").lower())
        offset += length
    if offset + 4 > len(packet):
        return None
    qtype, qclass = struct.unpack("!HH", packet[offset : offset + 4])
    return ident, flags, ".".join(labels), qtype, qclass, offset + 4


def answer(packet, names):
    """The response to one query packet, or None to drop it."""
    question = parse_question(packet)
    if question is None:
        if len(packet) >= 2:
            return packet[:2] + struct.pack("!HHHHH", 0x8180 | RCODE_FORMERR, 0, 0, 0, 0)
        return None
    ident, flags, name, qtype, qclass, end = question
    rd = flags & 0x0100
    header_flags = 0x8400 | rd | 0x0080  # response, authoritative, recursion "available" (no forwarding)
    body = packet[12:end]
    if flags & 0x7800:  # an opcode other than QUERY
        return struct.pack("!HHHHHH", ident, header_flags | RCODE_NOTIMP, 1, 0, 0, 0) + body
    address = names.get(name.rstrip("."))
    if address is None:
        return struct.pack("!HHHHHH", ident, header_flags | RCODE_NXDOMAIN, 1, 0, 0, 0) + body
    if qtype != TYPE_A or qclass != CLASS_IN:  # the name exists, but has no record of that type
        return struct.pack("!HHHHHH", ident, header_flags, 1, 0, 0, 0) + body
    record = struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, TTL, 4) + socket.inet_aton(address)
    return struct.pack("!HHHHHH", ident, header_flags, 1, 1, 0, 0) + body + record


def serve(zone):
    names = {name.lower(): address for name, address in zone["names"].items()}
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((zone["listen"], 53))
    while True:
        packet, client = server.recvfrom(4096)
        response = answer(packet, names)
        if response is not None:
            server.sendto(response, client)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        serve(json.load(f))
