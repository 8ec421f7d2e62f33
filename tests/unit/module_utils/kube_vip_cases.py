# -*- coding: utf-8 -*-
"""Command lines of ``kube-vip manifest ...`` for one kube-vip tag, made from the tables below.

Pure: ``cases(tag, flags)`` depends only on the tag and on the flags that tag's binary lists
(``flags`` = ``{kind: [flag, ...]}``, as tests/fixtures/kube-vip/<tag>/flags.json holds them), so the
fixture script and the differential test get the same cases. Every case uses only flags the tag has.

A case is (name, argv, refusal): ``refusal`` is None when the module must print what the binary
prints, else the reason the module refuses that command line on purpose (REFUSALS); the module's
renderer without those usability checks must still print the binary's bytes.
"""

import collections
import difflib
import os
import random
import shlex
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
COLLECTIONS = os.path.join(REPO, ".collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kube_vip  # noqa: E402
from ansible_collections.vipadm.kubeadm.plugins.modules import kube_vip_manifest  # noqa: E402

OPTIONS = _kube_vip.OPTIONS
ARGUMENT_SPEC = kube_vip_manifest.ARGUMENT_SPEC

Case = collections.namedtuple("Case", "name argv refusal")

# Deliberate refusals: reason -> a phrase of the module's error message.
REFUSALS = {
    "rbac before v0.9.0": "works from v0.9.0",
    "address and vip together": "either as address or as vip",
    "lease timings client-go rejects": "must be greater than",
    "neither arp nor bgp": "neither is set",
    "both arp and bgp": "both are set",
    "neither controlplane nor services": "with neither kube-vip has nothing to do",
    "controlplane without an address": "controlplane needs the virtual IP",
    "BGP without a router ID": "BGP needs bgp_router_id",
    "BGP without a peer": "BGP needs at least one peer",
}

ADDRESS = "192.168.0.40"
ROUTER_ID = "192.168.0.2"
TWO_PEERS = "192.168.0.10:65000::false,192.168.0.11:65000::false"

# Modes and roles: each base is kind x mode x role (18 bases). A value True is a boolean flag.
MODES = collections.OrderedDict([
    ("arp", [("--interface", "eth0"), ("--arp", True)]),
    ("bgppeers", [("--interface", "lo"), ("--bgp", True), ("--bgpRouterID", ROUTER_ID),
                  ("--bgppeers", TWO_PEERS)]),
    ("peeraddress", [("--interface", "lo"), ("--bgp", True), ("--bgpRouterID", ROUTER_ID),
                     ("--peerAddress", "192.168.0.10"), ("--peerAS", "65001")]),
])
ROLES = collections.OrderedDict([
    ("cp", [("--address", ADDRESS), ("--controlplane", True)]),
    ("svc", [("--services", True)]),
    ("cp-svc", [("--address", ADDRESS), ("--controlplane", True), ("--services", True)]),
])
KINDS = ("pod", "daemonset")

# Each entry sets (or with None removes) flags of a base: every option the module maps, alone
# and with the flags it depends on. (label, {flag: value}, kinds or None for pod and daemonset).
DUAL = "192.168.0.40,fd00::40"
VARIATIONS = [
    ("address-v6", {"--address": "fd00::40"}),
    ("address-dual", {"--address": DUAL}),
    ("address-dual-v6-first", {"--address": "fd00::40," + ADDRESS}),
    ("vip", {"--address": None, "--vip": "192.168.0.1"}),
    ("interface-vlan", {"--interface": "eth0.100"}),
    ("loInterfaceGlobalScope", {"--loInterfaceGlobalScope": True}),
    ("lo-global-scope", {"--interface": "lo", "--loInterfaceGlobalScope": True}),
    ("serviceInterface", {"--serviceInterface": "eth1"}),
    ("cidr", {"--cidr": "24"}),
    ("cidr-dual", {"--address": DUAL, "--cidr": "24,64"}),
    ("vipSubnet", {"--vipSubnet": "24"}),
    ("vipSubnet-dual", {"--address": DUAL, "--vipSubnet": "24,64"}),
    ("vipSubnet-vip", {"--address": None, "--vip": "192.168.0.1", "--vipSubnet": "24"}),
    ("port", {"--port": "8443"}),
    ("dnsMode-ipv4", {"--dnsMode": "ipv4"}),
    ("dnsMode-ipv6", {"--dnsMode": "ipv6"}),
    ("dnsMode-dual", {"--dnsMode": "dual"}),
    ("namespace", {"--namespace": "vip-system"}),
    ("ddns", {"--ddns": True}),
    ("autodetectcp", {"--autodetectcp": True}),
    ("services", {"--services": True}),
    ("servicesLeaseName", {"--services": True, "--servicesLeaseName": "svc-lock"}),
    ("servicesLeaseName-alone", {"--servicesLeaseName": "svc-lock"}),
    ("servicesElection", {"--services": True, "--servicesElection": True}),
    ("lbClassOnly", {"--lbClassOnly": True}),
    ("onlyAllowTrafficServicePorts", {"--onlyAllowTrafficServicePorts": True}),
    ("leaderElection", {"--leaderElection": True}),
    ("leaseName", {"--leaderElection": True, "--leaseName": "vip-lock"}),
    ("leaseName-alone", {"--leaseName": "vip-lock"}),
    ("lease-timings", {"--leaderElection": True, "--leaseDuration": "30", "--leaseRenewDuration": "20",
                       "--leaseRetry": "4"}),
    ("leaseDuration", {"--leaderElection": True, "--leaseDuration": "60"}),
    ("leaseRenewDuration", {"--leaderElection": True, "--leaseRenewDuration": "4"}),
    ("leaseRetry", {"--leaderElection": True, "--leaseDuration": "40", "--leaseRenewDuration": "30",
                    "--leaseRetry": "5"}),
    ("enableNodeLabeling", {"--enableNodeLabeling": True}),
    ("provider-config", {"--provider-config": "/etc/cloud-sa/cloud-sa.json"}),
    ("bgpRouterID", {"--bgpRouterID": "10.0.0.2"}),
    ("localAS", {"--localAS": "64512"}),
    ("peerAddress", {"--peerAddress": "192.168.0.20", "--peerAS": "64513"}),
    ("peerPass", {"--peerAddress": "192.168.0.20", "--peerPass": "s3cret"}),
    ("peerAS", {"--peerAS": "4200000000"}),
    ("sourceIF", {"--sourceIF": "eth0"}),
    ("sourceIP", {"--sourceIP": "192.168.0.2"}),
    ("bgppeers-one", {"--bgppeers": "192.168.0.10:65000::false"}),
    ("bgppeers-password-multihop", {"--bgppeers": "192.168.0.10:65000:s3cret:true"}),
    ("bgppeers-short", {"--bgppeers": "192.168.0.10:64512"}),
    ("bgppeers-v6", {"--bgppeers": "[fd00::10]:65000::false"}),
    ("enableLoadBalancer", {"--enableLoadBalancer": True}),
    ("lbPort", {"--enableLoadBalancer": True, "--lbPort": "7443"}),
    ("lbForwardingMethod-masquerade", {"--enableLoadBalancer": True, "--lbForwardingMethod": "masquerade"}),
    ("lbForwardingMethod-nat", {"--enableLoadBalancer": True, "--lbForwardingMethod": "nat"}),
    ("lbForwardingMethod-tunnel", {"--enableLoadBalancer": True, "--lbForwardingMethod": "tunnel"}),
    ("lbForwardingMethod-direct", {"--enableLoadBalancer": True, "--lbForwardingMethod": "direct"}),
    ("lbForwardingMethod-alone", {"--lbForwardingMethod": "masquerade"}),
    ("prometheusHTTPServer", {"--prometheusHTTPServer": ":2113"}),
    ("prometheusHTTPServer-host", {"--prometheusHTTPServer": "127.0.0.1:9100"}),
    ("prometheusHTTPServer-empty", {"--prometheusHTTPServer": ""}),
    ("enableEndpointSlices", {"--enableEndpointSlices": True}),
    ("enableEndpoints", {"--enableEndpoints": True}),
    ("disableServiceUpdates", {"--disableServiceUpdates": True}),
    ("mirrorDestInterface", {"--mirrorDestInterface": "eth2"}),
    ("healthCheckPort", {"--healthCheckPort": "8080"}),
    ("preserveVipOnLeadershipLoss", {"--preserveVipOnLeadershipLoss": True}),
    ("k8sConfigPath", {"--k8sConfigPath": "/etc/kubernetes/super-admin.conf"}),
    ("inCluster", {"--inCluster": True}),
    ("inCluster-k8sConfigPath", {"--inCluster": True, "--k8sConfigPath": "/etc/kubernetes/super-admin.conf"}),
    ("taint", {"--taint": True}, ("daemonset",)),
    ("image", {"--image": "registry.example.com/kube-vip/kube-vip"}),
    ("image-tag-port", {"--image": "registry.example.com:5000/kube-vip:v9.9.9"}),
    ("image-docker-hub", {"--image": "kube-vip"}),
    ("image-docker-hub-user", {"--image": "example/kube-vip:dev"}),
]
# Peer formats that only some versions read: (first version, label, {flag: value}).
VERSIONED_VARIATIONS = [
    ((0, 8, 10), "bgppeers-port", {"--bgppeers": "192.168.0.10:65001::false:1179"}),
    ((0, 8, 10), "bgppeers-mpbgp", {"--bgppeers": "192.168.0.10:65000::false/mpbgp_nexthop=fixed"}),
    ((1, 2, 0), "bgppeers-empty-multihop", {"--bgppeers": "192.168.0.10:65000::"}),
]
# Command lines refused on purpose, one reason each, as variations of a base.
REFUSED = [
    ("no-mode", {"--arp": None}, "arp"),
    ("both-modes", {"--bgp": True, "--bgpRouterID": ROUTER_ID, "--bgppeers": TWO_PEERS}, "arp"),
    ("no-role", {"--controlplane": None, "--services": None}, "arp"),
    ("cp-without-address", {"--address": None}, "arp"),
    ("address-and-vip", {"--vip": "192.168.0.1"}, "arp"),
    ("lease-timings-rejected", {"--leaderElection": True, "--leaseDuration": "5", "--leaseRenewDuration": "5"}, "arp"),
    ("bgp-without-router-id", {"--bgpRouterID": None}, "bgppeers"),
    ("bgp-without-peer", {"--bgppeers": None}, "bgppeers"),
    ("bgp-without-peer-address", {"--peerAddress": None}, "peeraddress"),
]

# The command lines of the old expected files (../shared/reference/kube-vip/README.md, groups A and B),
# kept as named fixture cases.
_MAKEFILE = "--interface eth0 --vip 192.168.0.1 --arp --leaderElection --controlplane --services"
_MAKEFILE_BGP = "--interface eth0 --vip 192.168.0.1 --bgp --controlplane --services"
_MAKEFILE_DS = "--interface eth0 --vip 192.168.0.1 --arp --leaderElection --controlplane --services --inCluster"
_MAKEFILE_DS_BGP = "--interface eth0 --vip 192.168.0.1 --bgp --leaderElection --controlplane --services --inCluster"
_ARP = "--interface eth0 --address 192.168.0.40 --controlplane --services --arp --leaderElection"
NAMED = collections.OrderedDict([
    ("makefile-pod-arp", "pod " + _MAKEFILE),
    ("makefile-pod-arp-lb", "pod " + _MAKEFILE + " --enableLoadBalancer"),
    ("makefile-pod-bgp", "pod " + _MAKEFILE_BGP),
    ("makefile-daemonset-arp", "daemonset " + _MAKEFILE_DS),
    ("makefile-daemonset-arp-lb", "daemonset " + _MAKEFILE_DS + " --enableLoadBalancer"),
    ("makefile-daemonset-bgp", "daemonset " + _MAKEFILE_DS_BGP),
    ("makefile-daemonset-bgp-em", "daemonset " + _MAKEFILE_DS_BGP + " --provider-config /etc/cloud-sa/cloud-sa.json"),
    ("arp-controlplane-services", "pod " + _ARP),
    ("arp-controlplane-services-superadmin", "pod " + _ARP + " --k8sConfigPath /etc/kubernetes/super-admin.conf"),
    ("bgp-controlplane-services", "pod --interface lo --address 192.168.0.40 --controlplane --services --bgp "
                                  "--localAS 65000 --bgpRouterID 192.168.0.2 --bgppeers " + TWO_PEERS),
    ("daemonset-arp-controlplane-services-taint", "daemonset --interface eth0 --address 192.168.0.40 --inCluster "
                                                  "--taint --controlplane --services --arp --leaderElection"),
    ("rbac", "rbac"),
])
RBAC_VARIATIONS = [
    ("rbac-namespace", {"--namespace": "vip-system"}),
    ("rbac-with-pod-flags", {"--interface": "eth0", "--address": ADDRESS, "--arp": True, "--controlplane": True}),
    ("rbac-inCluster", {"--inCluster": True}),
]
RANDOM_COMBINATIONS_UP_TO = 260  # pod/daemonset cases per tag, topped up with seeded combinations


def version_of(tag):
    return tuple(int(part) for part in tag.lstrip("v").split("."))


def _argv(kind, pairs):
    argv = ["manifest", kind]
    for flag, value in pairs:
        argv += [flag] if value is True else [flag, value]
    return argv


def _apply(pairs, changes):
    merged = collections.OrderedDict(pairs)
    for flag, value in changes.items():
        if value is None:
            merged.pop(flag, None)
        else:
            merged[flag] = value
    return list(merged.items())


def refusal(kind, pairs, version):
    """The reason the module refuses this command line on purpose, or None; in the module's order."""
    given = dict(pairs)
    if kind == "rbac":
        return "rbac before v0.9.0" if version < (0, 9, 0) else None
    if given.get("--address") and given.get("--vip"):
        return "address and vip together"
    durations = [int(given.get(flag, default)) for flag, default in
                 zip(("--leaseDuration", "--leaseRenewDuration", "--leaseRetry"),
                     (15, 10, 2) if version >= (1, 1, 0) else (5, 3, 1))]
    if not (durations[0] > durations[1] > 1.2 * durations[2]):
        return "lease timings client-go rejects"
    if "--arp" in given and "--bgp" in given:
        return "both arp and bgp"
    if "--arp" not in given and "--bgp" not in given:
        return "neither arp nor bgp"
    if "--controlplane" not in given and "--services" not in given:
        return "neither controlplane nor services"
    if "--controlplane" in given and not (given.get("--address") or given.get("--vip")):
        return "controlplane without an address"
    if "--bgp" in given and not given.get("--bgpRouterID"):
        return "BGP without a router ID"
    if "--bgp" in given and not (given.get("--bgppeers") or given.get("--peerAddress")):
        return "BGP without a peer"
    return None


def pairs_of(words):
    """``["--arp", "--port", "8443"]`` -> ``[("--arp", True), ("--port", "8443")]``; the fixtures
    write a flag's value as the next word, so a value may be empty but never starts with '--'."""
    pairs, rest = [], list(words)
    while rest:
        flag = rest.pop(0)
        pairs.append((flag, rest.pop(0) if rest and not rest[0].startswith("--") else True))
    return pairs


def _has(flags, kind, pairs):
    return all(flag in flags.get(kind, ()) for flag, _value in pairs)


def _bases():
    return [("%s-%s-%s" % (kind, mode, role), kind, MODES[mode] + ROLES[role])
            for kind in KINDS for mode in MODES for role in ROLES]


def cases(tag, flags):
    """Every case of ``tag`` whose flags the tag has: named, bases, variations, refusals, combinations."""
    version = version_of(tag)
    found = collections.OrderedDict()

    def add(name, kind, pairs):
        # `manifest rbac` is tried on every tag: the module refuses it where kube-vip prints no YAML.
        if (kind in flags or (kind, pairs) == ("rbac", [])) and _has(flags, kind, pairs):
            argv = _argv(kind, pairs)
            if tuple(argv) not in {tuple(case.argv) for case in found.values()}:
                found[name] = Case(name, argv, refusal(kind, pairs, version))

    for name, command in NAMED.items():
        words = command.split()
        add(name, words[0], pairs_of(words[1:]))
    for name, changes in RBAC_VARIATIONS:
        add(name, "rbac", _apply([], changes))
    bases = _bases()
    for name, kind, pairs in bases:
        add(name, kind, pairs)
    variations = [(entry[0], entry[1], entry[2] if len(entry) > 2 else KINDS) for entry in VARIATIONS]
    variations += [(label, changes, KINDS) for since, label, changes in VERSIONED_VARIATIONS if version >= since]
    for index, (label, changes, kinds) in enumerate(variations):
        fitting = [base for base in bases if base[1] in kinds]
        for step in range(3):
            name, kind, pairs = fitting[(index + 7 * step) % len(fitting)]
            add("%s+%s" % (name, label), kind, _apply(pairs, changes))
    for label, changes, mode in REFUSED:
        for name, kind, pairs in bases:
            if name.startswith("pod-%s-cp-svc" % mode):
                add("%s+%s" % (name, label), kind, _apply(pairs, changes))
    usable = [(label, changes, kinds) for label, changes, kinds in variations
              if all(flag in flags.get("daemonset", ()) or value is None for flag, value in changes.items())]
    rng = random.Random("vipadm kube-vip combinations " + tag)
    attempts = 0
    while sum(1 for case in found.values() if case.argv[1] != "rbac") < RANDOM_COMBINATIONS_UP_TO and attempts < 5000:
        attempts += 1
        name, kind, pairs = rng.choice(bases)
        picked = rng.sample(usable, rng.randint(2, 4))
        if any(kind not in kinds for _label, _changes, kinds in picked):
            continue
        for _label, changes, _kinds in picked:
            pairs = _apply(pairs, changes)
        add("%s+%s" % (name, "+".join(label for label, _changes, _kinds in picked)), kind, pairs)
    return list(found.values())


def fixture_cases(tag, flags):
    """The cases kept as files in tests/fixtures/kube-vip/<tag>/: the named and base cases (no '+'),
    minus `manifest rbac` where kube-vip prints no YAML."""
    return [case for case in cases(tag, flags)
            if "+" not in case.name and case.refusal != "rbac before v0.9.0"]


def module_params(argv, tag):
    """kube-vip argv (``manifest <kind> --flag value ...``) -> the module's parameters."""
    by_flag = dict((spec[0], name) for name, spec in OPTIONS.items() if spec[0].startswith("--"))
    by_flag["--bgppeers"] = "bgppeers"
    params = {"version": tag, "kind": argv[1]}
    for flag, value in pairs_of(argv[2:]):
        name = by_flag[flag]
        kind = ARGUMENT_SPEC[name]["type"]
        if (kind == "bool") != (value is True):
            raise ValueError("%s: a %s option, given %r" % (flag, kind, value))
        params[name] = int(value) if kind == "int" else value
    return params


def command_line(argv):
    """The shell form of argv, as the fixtures' commands.txt writes it."""
    return "kube-vip " + shlex.join(argv)


def argv_of(command):
    """The argv of a commands.txt line's command (``kube-vip manifest ...``)."""
    words = shlex.split(command)
    assert words[0] == "kube-vip", command
    return words[1:]


def is_manifest(code, stdout):
    """Whether kube-vip printed a manifest: some versions refuse with exit 1, others print help and exit 0."""
    return code == 0 and stdout.startswith((b"apiVersion: ", b"---\n"))


def difference(tag, argv, reason, code, stdout, stderr=""):
    """None when the module does with ``argv`` what it must, given what the binary did (exit code,
    stdout bytes, stderr); else one sentence (and a diff) that says what differs."""
    params = module_params(argv, tag)
    options = kube_vip_manifest.kube_vip_options(params)
    printed = is_manifest(code, stdout)
    try:
        rendered = _kube_vip.render(options)
    except _kube_vip.KubeVipOptionError as error:
        if reason is None:
            return "the module refuses it (%s) but kube-vip prints a manifest" % error if printed else (
                "both refuse it, but the case names no reason; kube-vip says: %s" % stderr.strip()[-200:])
        if REFUSALS[reason] not in str(error):
            return "refused for %r, but the message says: %s" % (reason, error)
        if not printed:
            return None  # kube-vip prints no manifest either
        rendered = _kube_vip.render(options, require_usable=False)
    else:
        if reason is not None:
            return "the module prints it, but should refuse it on purpose: %s" % reason
        if not printed:
            return "kube-vip prints no manifest (exit %d: %s) but the module does" % (code, stderr.strip()[-200:])
    text = stdout.decode("utf-8")
    if rendered == text:
        return None
    diff = difflib.unified_diff(text.splitlines(True), rendered.splitlines(True), "kube-vip", "module", n=1)
    return "the module's bytes differ from kube-vip's:\n" + "".join(list(diff)[:40])
