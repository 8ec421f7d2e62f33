# -*- coding: utf-8 -*-
"""Every file in ../shared/reference/kube-vip/ is one case: the same command line must give the same bytes.

The command lines are the ones ../shared/reference/kube-vip/README.md gives for each file, written
here as kube-vip argv and translated to the module's snake_case options by this test's own table.
"""

import os
import shlex
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, ".collections"))

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kube_vip  # noqa: E402

REFERENCE_DIR = os.path.join(REPO, "..", "shared", "reference", "kube-vip")

# README.md, group A (Makefile `manifests` target) and group B ($ARP, $BGP, $DS).
MAKEFILE_ARP = "manifest pod --interface eth0 --vip 192.168.0.1 --arp --leaderElection --controlplane --services"
MAKEFILE_BGP = "manifest pod --interface eth0 --vip 192.168.0.1 --bgp --controlplane --services"
MAKEFILE_DS_ARP = ("manifest daemonset --interface eth0 --vip 192.168.0.1 --arp --leaderElection "
                   "--controlplane --services --inCluster")
MAKEFILE_DS_BGP = ("manifest daemonset --interface eth0 --vip 192.168.0.1 --bgp --leaderElection "
                   "--controlplane --services --inCluster")
ARP = "manifest pod --interface eth0 --address 192.168.0.40 --controlplane --services --arp --leaderElection"
BGP = ("manifest pod --interface lo --address 192.168.0.40 --controlplane --services --bgp --localAS 65000 "
       "--bgpRouterID 192.168.0.2 --bgppeers 192.168.0.10:65000::false,192.168.0.11:65000::false")
DS = ("manifest daemonset --interface eth0 --address 192.168.0.40 --inCluster --taint --controlplane "
      "--services --arp --leaderElection")
SUPER_ADMIN = " --k8sConfigPath /etc/kubernetes/super-admin.conf"

# File name (without the version prefix) -> command line.
COMMANDS = {
    "makefile-pod-arp": MAKEFILE_ARP,
    "makefile-pod-arp-lb": MAKEFILE_ARP + " --enableLoadBalancer",
    "makefile-pod-bgp": MAKEFILE_BGP,
    "makefile-daemonset-arp": MAKEFILE_DS_ARP,
    "makefile-daemonset-arp-lb": MAKEFILE_DS_ARP + " --enableLoadBalancer",
    "makefile-daemonset-bgp": MAKEFILE_DS_BGP,
    "makefile-daemonset-bgp-em": MAKEFILE_DS_BGP + " --provider-config /etc/cloud-sa/cloud-sa.json",
    "arp-controlplane-services": ARP,
    "arp-controlplane-services-superadmin": ARP + SUPER_ADMIN,
    "bgp-controlplane-services": BGP,
    "daemonset-arp-controlplane-services-taint": DS,
    "rbac": "manifest rbac",
}

# kube-vip flag -> module option (the module's documented names).
FLAGS = {
    "--interface": "interface", "--vip": "vip", "--address": "address", "--arp": "arp",
    "--bgp": "bgp", "--leaderElection": "leader_election", "--controlplane": "controlplane",
    "--services": "services", "--inCluster": "in_cluster", "--taint": "taint",
    "--enableLoadBalancer": "enable_load_balancer", "--provider-config": "provider_config",
    "--localAS": "local_as", "--bgpRouterID": "bgp_router_id", "--bgppeers": "bgp_peers",
    "--k8sConfigPath": "k8s_config_path",
}
INTEGER_OPTIONS = {"local_as"}


def options_from_command(version, command):
    """kube-vip argv -> the option dict the module would receive."""
    words = shlex.split(command)
    assert words[0] == "manifest"
    options = {"version": version, "kind": words[1]}
    rest = words[2:]
    while rest:
        flag = rest.pop(0)
        name = FLAGS[flag]
        if rest and not rest[0].startswith("--"):
            value = rest.pop(0)
            options[name] = int(value) if name in INTEGER_OPTIONS else value
        else:
            options[name] = True
    return options


def reference_cases():
    names = sorted(n for n in os.listdir(REFERENCE_DIR) if n.endswith(".yaml"))
    return names


def split_name(file_name):
    stem = file_name[: -len(".yaml")]
    version, _sep, case = stem.partition("-")
    return version, case


def test_reference_directory_is_there():
    # Guards against a silently empty parametrization when ../shared is missing.
    assert len(reference_cases()) >= 40


@pytest.mark.parametrize("file_name", reference_cases())
def test_reference_manifest_is_reproduced_byte_for_byte(file_name):
    version, case = split_name(file_name)
    assert case in COMMANDS, "no command line known for %s; add it from the README" % file_name
    options = options_from_command(version, COMMANDS[case])
    with open(os.path.join(REFERENCE_DIR, file_name), "rb") as handle:
        expected = handle.read().decode("utf-8")
    # The Makefile BGP commands have neither router ID nor peers: kube-vip prints them, vipadm
    # refuses them by default (see test_makefile_bgp_commands_are_refused_by_default).
    usable = "makefile" not in case or "bgp" not in case
    assert _kube_vip.render(options, require_usable=usable) == expected


@pytest.mark.parametrize("file_name", [n for n in reference_cases() if "makefile" in n and "bgp" in n])
def test_makefile_bgp_commands_are_refused_by_default(file_name):
    version, case = split_name(file_name)
    with pytest.raises(_kube_vip.KubeVipOptionError, match="bgp_router_id"):
        _kube_vip.render(options_from_command(version, COMMANDS[case]))
