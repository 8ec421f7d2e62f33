"""Preflight refusals of kube-vip's services mode: kube_vip_services, kube_vip_services_election and the
addresses Services of type LoadBalancer may take (kube_vip_services_addresses), through evaluate() as the
preflight module calls it."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _preflight as pf  # noqa: E402

CP = ["cp1", "cp2", "cp3"]
WORKERS = ["worker1"]


def node(name, address, prefix=24, **extra):
    report = dict(hostname=name, address=address,
                  interfaces={"lo": ["127.0.0.1/8"], "eth0": ["%s/%d" % (address, prefix)]},
                  default_interface="eth0", kubeadm_path="/usr/bin/kubeadm", cluster_state="none",
                  vip_tcp_answers=False, vip_arp_answers=False)
    report.update(extra)
    return report


def nodes():
    return {name: node(name, "198.51.100.%d" % (11 + i)) for i, name in enumerate(CP + WORKERS)}


def run(reports=None, control_planes=CP, **kw):
    settings = dict(vip="198.51.100.254", port=6443, kubernetes_version="1.36.3", kube_vip_version="v1.2.3",
                    mode="arp", bgp_peers=None, interface=None, init_host=None, services=True)
    settings.update(kw)
    return pf.evaluate(settings, control_planes, WORKERS, nodes() if reports is None else reports)["errors"]


GOOD = [
    ("one address", ["198.51.100.200"]),
    ("a range", ["198.51.100.200-198.51.100.220"]),
    ("a CIDR", ["198.51.100.224/28"]),
    ("three forms, disjoint", ["198.51.100.200", "198.51.100.201-198.51.100.210", "198.51.100.224/29"]),
    ("a comma-separated text, as the cloud provider's ConfigMap", "198.51.100.200,198.51.100.210-198.51.100.211"),
    ("none", []),
]


@pytest.mark.parametrize("addresses", [c[1] for c in GOOD], ids=[c[0] for c in GOOD])
def test_addresses_of_the_control_planes_subnet_pass(addresses):
    assert run(services_addresses=addresses) == []


def test_services_mode_with_its_election_and_no_addresses_passes():
    assert run(services_election=True) == []


# (case id, keyword args for run(), the refusal expected, whole)
REFUSALS = [
    ("election without services", dict(services=False, services_election=True),
     "kube_vip_services_election is true but kube_vip_services is false: the per-Service election is part of "
     "kube-vip's services mode; set kube_vip_services: true, or drop kube_vip_services_election."),
    ("addresses without services", dict(services=False, services_addresses=["198.51.100.200"]),
     "kube_vip_services_addresses is set but kube_vip_services is false: no kube-vip would announce those "
     "addresses; set kube_vip_services: true, or remove kube_vip_services_addresses."),
    ("not an address", dict(services_addresses=["lb.example.org"]),
     "kube_vip_services_addresses: 'lb.example.org' is not an address: write an address, a range first-last or a "
     "CIDR, for example 192.168.10.200, 192.168.10.200-192.168.10.220 or 192.168.10.224/28."),
    ("half a range", dict(services_addresses=["198.51.100.200-"]),
     "kube_vip_services_addresses: '198.51.100.200-' is not a range of two addresses: write an address, a range "
     "first-last or a CIDR, for example 192.168.10.200, 192.168.10.200-192.168.10.220 or 192.168.10.224/28."),
    ("a range backwards", dict(services_addresses=["198.51.100.220-198.51.100.200"]),
     "kube_vip_services_addresses: the range 198.51.100.220-198.51.100.200 ends before it starts: write it "
     "198.51.100.200-198.51.100.220."),
    ("a range of two families", dict(services_addresses=["198.51.100.200-2001:db8::1"]),
     "kube_vip_services_addresses: the range 198.51.100.200-2001:db8::1 mixes IPv4 and IPv6: give each family "
     "its own entry."),
    ("a CIDR with host bits", dict(services_addresses=["198.51.100.226/28"]),
     "kube_vip_services_addresses: 198.51.100.226/28 has bits set after its prefix: write the network, "
     "198.51.100.224/28."),
    ("a bad prefix", dict(services_addresses=["198.51.100.224/33"]),
     "kube_vip_services_addresses: '198.51.100.224/33' is not a CIDR: write an address, a range first-last or a "
     "CIDR, for example 192.168.10.200, 192.168.10.200-192.168.10.220 or 192.168.10.224/28."),
    ("the VIP itself", dict(services_addresses=["198.51.100.254"]),
     "kube_vip_services_addresses: 198.51.100.254 is the control plane VIP 198.51.100.254 (kube_vip_address): "
     "Service addresses must be other free addresses."),
    ("a range over the VIP", dict(services_addresses=["198.51.100.250-198.51.100.254"]),
     "kube_vip_services_addresses: 198.51.100.250-198.51.100.254 holds the control plane VIP 198.51.100.254 "
     "(kube_vip_address): Service addresses must be other free addresses."),
    ("a worker's address", dict(services_addresses=["198.51.100.14"]),
     "kube_vip_services_addresses: 198.51.100.14 is the address of worker1: Service addresses must be free "
     "addresses that no node uses."),
    ("a CIDR over a control plane's address", dict(services_addresses=["198.51.100.8/29"]),
     "kube_vip_services_addresses: 198.51.100.8/29 holds the address of cp1 (198.51.100.11), cp2 (198.51.100.12), "
     "cp3 (198.51.100.13) and worker1 (198.51.100.14): Service addresses must be free addresses that no node uses."),
    ("two entries overlap", dict(services_addresses=["198.51.100.200-198.51.100.210", "198.51.100.208/29"]),
     "kube_vip_services_addresses: 198.51.100.200-198.51.100.210 and 198.51.100.208/29 overlap: list each "
     "address once."),
    ("outside the subnet", dict(services_addresses=["203.0.113.10"]),
     "kube_vip_services_addresses: 203.0.113.10 is outside the subnet of the VIP interface of cp1, cp2 and cp3 "
     "(eth0: 198.51.100.0/24): in ARP mode kube-vip puts a Service address on that interface and answers ARP for "
     "it there, so it must be a free address of the control planes' subnet; pick one there, or use BGP mode."),
    ("a range leaving the subnet", dict(services_addresses=["198.51.100.250-198.51.101.5"]),
     "kube_vip_services_addresses: 198.51.100.250-198.51.101.5 holds the control plane VIP 198.51.100.254 "
     "(kube_vip_address): Service addresses must be other free addresses."),
    ("the broadcast address", dict(services_addresses=["198.51.100.255"]),
     "kube_vip_services_addresses: 198.51.100.255 holds 198.51.100.255, the broadcast address of 198.51.100.0/24 "
     "(the subnet of cp1, cp2 and cp3): no machine can use it; leave it out."),
    ("the network address", dict(services_addresses=["198.51.100.0"]),
     "kube_vip_services_addresses: 198.51.100.0 holds 198.51.100.0, the network address of 198.51.100.0/24 "
     "(the subnet of cp1, cp2 and cp3): no machine can use it; leave it out."),
    ("IPv6 on an IPv4-only interface", dict(services_addresses=["2001:db8::200"]),
     "kube_vip_services_addresses: 2001:db8::200 is outside the subnet of the VIP interface of cp1, cp2 and cp3 "
     "(eth0: no address): in ARP mode kube-vip puts a Service address on that interface and answers ARP for "
     "it there, so it must be a free address of the control planes' subnet; pick one there, or use BGP mode."),
]


@pytest.mark.parametrize("kwargs,expected", [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS])
def test_refusals(kwargs, expected):
    errors = run(**kwargs)
    assert expected in errors, errors
    # "a range leaving the subnet" is refused twice (the VIP inside, and outside the subnet); the rest once
    assert len(errors) == (2 if "198.51.101.5" in str(kwargs) else 1), errors


def test_a_range_leaving_the_subnet_is_also_refused_as_outside_it():
    errors = run(services_addresses=["198.51.100.250-198.51.101.5"])
    assert any(e.startswith("kube_vip_services_addresses: 198.51.100.250-198.51.101.5 is outside the subnet of the "
                            "VIP interface of cp1, cp2 and cp3") for e in errors), errors


def test_only_the_control_planes_whose_subnet_lacks_the_address_are_named():
    reports = nodes()
    reports["cp3"] = node("cp3", "198.51.100.13", prefix=25)  # 198.51.100.0/25: .200 is outside it
    errors = run(reports=reports, services_addresses=["198.51.100.200"], vip="198.51.100.100")
    assert errors == [
        "kube_vip_services_addresses: 198.51.100.200 is outside the subnet of the VIP interface of cp3 (eth0: "
        "198.51.100.0/25): in ARP mode kube-vip puts a Service address on that interface and answers ARP for it "
        "there, so it must be a free address of the control planes' subnet; pick one there, or use BGP mode."]


def test_the_named_vip_interface_is_the_one_checked():
    reports = nodes()
    for name in CP:
        reports[name]["interfaces"]["eth1"] = ["203.0.113.%d/24" % (11 + CP.index(name))]
    assert run(reports=reports, services_addresses=["203.0.113.200"], interface="eth1", vip="203.0.113.254") == []
    errors = run(reports=reports, services_addresses=["198.51.100.200"], interface="eth1", vip="203.0.113.254")
    assert len(errors) == 1 and "outside the subnet of the VIP interface of cp1, cp2 and cp3 (eth1: 203.0.113.0/24)" \
        in errors[0], errors


def test_an_address_on_a_node_interface_other_than_its_inventory_one_is_refused_with_the_interface():
    reports = nodes()
    reports["worker1"]["interfaces"]["eth1"] = ["198.51.100.200/24"]
    assert run(reports=reports, services_addresses=["198.51.100.200"]) == [
        "kube_vip_services_addresses: 198.51.100.200 is the address of worker1 (on eth1): Service addresses must be "
        "free addresses that no node uses."]


def test_bgp_mode_takes_addresses_outside_the_subnet_but_not_the_vip_or_a_node_address():
    peers = [{"address": "198.51.100.1", "as": 65000}]
    assert run(mode="bgp", bgp_peers=peers, services_addresses=["203.0.113.0/28"]) == []
    errors = run(mode="bgp", bgp_peers=peers, services_addresses=["198.51.100.250-198.51.100.254"])
    assert len(errors) == 1 and "holds the control plane VIP" in errors[0], errors


def test_without_node_reports_only_the_inventory_level_checks_run():
    assert run(reports={}, services_addresses=["203.0.113.10"]) == []
    assert len(run(reports={}, services_addresses=["198.51.100.254"])) == 1


def test_services_off_and_nothing_set_is_the_default_and_passes():
    assert run(services=False) == []
    assert pf.evaluate(dict(vip="198.51.100.254", port=6443, kubernetes_version="1.36.3"), CP, WORKERS,
                       nodes())["errors"] == []


def test_a_re_run_passes_while_kube_vip_holds_the_vip_and_service_addresses_as_host_addresses():
    reports = nodes()
    reports["cp2"]["interfaces"]["eth0"] += ["198.51.100.254/32", "198.51.100.200/32", "198.51.100.201/32"]
    reports["cp3"]["interfaces"]["lo"] += ["198.51.100.202/32"]  # BGP mode puts them on lo
    for name in CP:
        reports[name]["cluster_state"] = "control_plane"
    assert run(reports=reports, services_election=True, services_addresses=["198.51.100.200-198.51.100.210"]) == []


def reports_with_answers(answers_by_node):
    """Node reports whose interfaces have Ethernet addresses (cp1 02:00:00:00:00:0b, ...) and services_answers."""
    reports = nodes()
    for index, name in enumerate(CP + WORKERS):
        reports[name]["interface_macs"] = {"eth0": "02:00:00:00:00:%02x" % (11 + index)}
        reports[name]["services_answers"] = answers_by_node.get(name, {})
    return reports


def test_an_address_answering_from_another_machine_is_refused_with_its_answer_and_who_saw_it():
    reports = reports_with_answers({"cp1": {"198.51.100.205": "02:AA:00:00:00:01"},
                                    "cp2": {"198.51.100.205": "02:aa:00:00:00:01"}})
    assert run(reports, services_addresses=["198.51.100.200-198.51.100.210"]) == [
        "kube_vip_services_addresses: 198.51.100.205 (from 02:aa:00:00:00:01) of 198.51.100.200-198.51.100.210 "
        "already answers ARP (seen from cp1 and cp2) though no node holds it: another machine uses it; free it or "
        "leave it out of kube_vip_services_addresses."]


def test_every_taken_address_of_an_entry_is_named_in_one_sentence_and_other_entries_apart():
    reports = reports_with_answers({"cp3": {"198.51.100.202": "02:aa:00:00:00:01", "198.51.100.201": "",
                                            "198.51.100.230": "02:aa:00:00:00:02"}})
    errors = run(reports, services_addresses=["198.51.100.200-198.51.100.210", "198.51.100.230"])
    assert errors == [
        "kube_vip_services_addresses: 198.51.100.201 (from an unnamed link-layer address) and 198.51.100.202 (from "
        "02:aa:00:00:00:01) of 198.51.100.200-198.51.100.210 already answer ARP (seen from cp3) though no node holds "
        "them: another machine uses them; free them or leave them out of kube_vip_services_addresses.",
        "kube_vip_services_addresses: 198.51.100.230 (from 02:aa:00:00:00:02) already answers ARP (seen from cp3) "
        "though no node holds it: another machine uses it; free it or leave it out of kube_vip_services_addresses."]


def test_an_answer_from_a_nodes_own_interface_is_kube_vip_holding_the_address_and_passes():
    # a re-run: cp2's kube-vip holds a Service address, cp1 and cp3 hear cp2's interface answer (a worker's too)
    reports = reports_with_answers({"cp1": {"198.51.100.200": "02:00:00:00:00:0c"},
                                    "cp3": {"198.51.100.200": "02:00:00:00:00:0C", "198.51.100.201": "02:00:00:00:00:0e"}})
    reports["cp2"]["cluster_state"] = "control_plane"
    assert run(reports, services_addresses=["198.51.100.200-198.51.100.210"]) == []


def test_an_ipv6_address_answering_neighbor_discovery_from_another_machine_is_refused():
    reports = reports_with_answers({"cp1": {"2001:db8::c8": "02:aa:00:00:00:01"}})
    for name in reports:
        reports[name]["interfaces"]["eth0"].append("2001:db8::%x/64" % (11 + (CP + WORKERS).index(name)))
    errors = run(reports, vip="2001:db8::fe", services_addresses=["2001:db8::c8"])
    assert errors == [
        "kube_vip_services_addresses: 2001:db8::c8 (from 02:aa:00:00:00:01) already answers Neighbor Discovery (seen "
        "from cp1) though no node holds it: another machine uses it; free it or leave it out of "
        "kube_vip_services_addresses."]


PROBES = [
    ("one address", ["198.51.100.200"], 64, (["198.51.100.200"], 0)),
    ("a range and a CIDR in order", ["198.51.100.201-198.51.100.202", "198.51.100.224/31"], 64,
     (["198.51.100.201", "198.51.100.202", "198.51.100.224", "198.51.100.225"], 0)),
    ("cut at the limit", ["198.51.100.0/24"], 3, (["198.51.100.0", "198.51.100.1", "198.51.100.2"], 253)),
    ("the limit across entries", ["198.51.100.200-198.51.100.201", "198.51.100.208/30"], 3,
     (["198.51.100.200", "198.51.100.201", "198.51.100.208"], 3)),
    ("a malformed entry is skipped (refused elsewhere)", ["nonsense", "2001:db8::1"], 64, (["2001:db8::1"], 0)),
    ("comma-separated text", "198.51.100.200,198.51.100.210", 64, (["198.51.100.200", "198.51.100.210"], 0)),
]


@pytest.mark.parametrize("entries,limit,expected", [c[1:] for c in PROBES], ids=[c[0] for c in PROBES])
def test_the_addresses_to_probe_are_every_address_up_to_the_limit(entries, limit, expected):
    assert pf.services_probe_addresses(entries, limit) == expected


def test_the_default_probe_limit_keeps_a_slash_24_from_being_probed_whole():
    addresses, left_out = pf.services_probe_addresses(["198.51.100.0/24"])
    assert (len(addresses), left_out) == (pf.SERVICES_PROBE_LIMIT, 256 - pf.SERVICES_PROBE_LIMIT)


def test_arpings_reply_line_gives_the_answering_machine():
    reply = ("ARPING 198.51.100.50 from 0.0.0.0 eth0\nUnicast reply from 198.51.100.50 [0E:4B:AD:5A:EF:B6]  0.527ms\n"
             "Sent 1 probes (1 broadcast(s))\nReceived 1 response(s)\n")
    assert pf.arping_reply_mac(reply) == "0e:4b:ad:5a:ef:b6"
    assert pf.arping_reply_mac("ARPING 198.51.100.51 from 0.0.0.0 eth0\nSent 2 probes (2 broadcast(s))\n") is None


def test_link_addresses_of_ethernet_interfaces_only():
    links = [{"ifname": "lo", "link_type": "loopback", "address": "00:00:00:00:00:00"},
             {"ifname": "eth0", "link_type": "ether", "address": "02:AB:CD:EF:01:0B"},
             {"ifname": "kube-ipvs0", "link_type": "ether", "address": "ee:ee:ee:ee:ee:01"},
             {"ifname": "tun0", "link_type": "none"}]
    assert pf.parse_link_macs(links) == {"eth0": "02:ab:cd:ef:01:0b", "kube-ipvs0": "ee:ee:ee:ee:ee:01"}
