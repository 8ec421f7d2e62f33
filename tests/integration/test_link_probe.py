# -*- coding: utf-8 -*-
"""preflight_facts' link probes against a real second machine: two network namespaces made here on one veth pair,
the module run in one of them (an ad-hoc `ansible` run, the real arping and the module's own Neighbor Solicitations),
the other holding a Service address of each family as a squatter would. The probe must name the squatter's
Ethernet address for the addresses it holds and nothing for the free ones. Cost: about 5 s; needs root."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.dirname(sys.executable)

PROBER, SQUATTER = "198.51.100.11", "198.51.100.12"
HELD4, HELD6 = "198.51.100.201", "2001:db8::c9"


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@pytest.fixture
def two_machines():
    """(prober namespace, its interface, the squatter's Ethernet address); removed afterwards."""
    tag = "%d" % (os.getpid() % 100000)
    prober, squatter = "vipadm-probe-a-" + tag, "vipadm-probe-b-" + tag
    prober_if, squatter_if = "vpa" + tag, "vpb" + tag
    ip("netns", "add", prober)
    try:
        ip("netns", "add", squatter)
        ip("link", "add", prober_if, "netns", prober, "type", "veth", "peer", "name", squatter_if, "netns", squatter)
        for netns, iface, address, address6 in ((prober, prober_if, PROBER, "2001:db8::b"),
                                                (squatter, squatter_if, SQUATTER, "2001:db8::c")):
            # Link-local and global addresses without duplicate address detection: usable at once.
            ip("-n", netns, "link", "set", iface, "addrgenmode", "none")
            ip("-n", netns, "link", "set", iface, "up")
            ip("-n", netns, "addr", "add", address + "/24", "dev", iface)
            ip("-n", netns, "addr", "add", address6.replace("2001:db8:", "fe80:") + "/64", "dev", iface, "nodad")
            ip("-n", netns, "addr", "add", address6 + "/64", "dev", iface, "nodad")
        ip("-n", squatter, "addr", "add", HELD4 + "/32", "dev", squatter_if)
        ip("-n", squatter, "addr", "add", HELD6 + "/128", "dev", squatter_if, "nodad")
        mac = subprocess.run(["ip", "-n", squatter, "-j", "link", "show", squatter_if], check=True,
                             capture_output=True, text=True).stdout
        yield prober, prober_if, json.loads(mac)[0]["address"].lower()
    finally:
        for netns in (prober, squatter):
            subprocess.run(["ip", "netns", "del", netns], capture_output=True)


def test_the_probe_names_the_machine_that_holds_a_service_address_of_each_family(two_machines):
    netns, iface, squatter_mac = two_machines
    args = {"vip": "198.51.100.250", "interface": iface, "probe_arp": True, "timeout": 1.0,
            "services_addresses": ["198.51.100.200-198.51.100.202", "2001:db8::c8-2001:db8::ca"]}
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""), ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_CONFIG", None)  # the repository's ansible.cfg is what makes vipadm.kubeadm resolve
    run = subprocess.run(["ip", "netns", "exec", netns, "ansible", "localhost", "-m", "vipadm.kubeadm.preflight_facts",
                          "-a", json.dumps(args)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout.split(" => ", 1)[1])  # "localhost | SUCCESS => {...}"
    assert result["services_answers"] == {HELD4: squatter_mac, HELD6: squatter_mac}, result
    assert result["vip_arp_answers"] is False and result["vip_tcp_answers"] is False
    assert squatter_mac not in result["interface_macs"].values() and iface in result["interface_macs"]
