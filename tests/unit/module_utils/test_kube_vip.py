# -*- coding: utf-8 -*-
"""kube-vip manifest rules by version, on flag combinations the reference files do not cover,
and every validation error."""

import os
import sys

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, ".collections"))

from ansible_collections.vipadm.kubeadm.plugins.module_utils._kube_vip import (  # noqa: E402
    KubeVipOptionError,
    control_plane_lease,
    image_reference,
    render,
)

ARP = dict(address="192.168.0.40", interface="eth0", arp=True, controlplane=True, services=True,
           leader_election=True)
BGP = dict(address="192.168.0.40", interface="lo", arp=False, leader_election=False, bgp=True, controlplane=True, services=True,
           bgp_router_id="192.168.0.2", bgp_peers="192.168.0.10:65000::false")


def manifest(version, **options):
    merged = dict(ARP)
    merged.update(options)
    merged["version"] = version
    return render(merged)


def loaded(version, **options):
    return yaml.safe_load(manifest(version, **options))


def pod_spec(document):
    return document["spec"]["template"]["spec"] if document["kind"] == "DaemonSet" else document["spec"]


def env(version, **options):
    """The env list as (name, value) pairs; value None for name-only, 'fieldRef' for the node name."""
    container = pod_spec(loaded(version, **options))["containers"][0]
    pairs = []
    for entry in container["env"]:
        if "valueFrom" in entry:
            pairs.append((entry["name"], "fieldRef"))
        else:
            pairs.append((entry["name"], entry.get("value")))
    return pairs


def env_dict(version, **options):
    return dict(env(version, **options))


# --- Serialisation details that depend on the version ------------------------------------------

@pytest.mark.parametrize("version, present", [("v1.0.0", True), ("v1.0.1", False)])
@pytest.mark.parametrize("kind", ["pod", "daemonset"])
def test_creation_timestamp_is_printed_up_to_v1_0_0(version, present, kind):
    text = manifest(version, kind=kind)
    expected_count = (2 if kind == "daemonset" else 1) if present else 0
    assert text.count("creationTimestamp: null\n") == expected_count


@pytest.mark.parametrize("version, has_status", [("v0.8.1", True), ("v0.8.2", False)])
def test_daemonset_status_is_dropped_from_v0_8_2(version, has_status):
    document = loaded(version, kind="daemonset", in_cluster=True)
    assert ("status" in document) is has_status
    if has_status:
        assert document["status"] == {"currentNumberScheduled": 0, "desiredNumberScheduled": 0,
                                      "numberMisscheduled": 0, "numberReady": 0}


def test_pod_always_has_empty_status_and_resources():
    text = manifest("v1.2.3")
    assert text.endswith("status: {}\n\n")
    assert "    resources: {}\n" in text


@pytest.mark.parametrize("version, policy", [("v0.7.2", "Always"), ("v0.8.0", "IfNotPresent")])
def test_image_pull_policy_by_version(version, policy):
    assert pod_spec(loaded(version))["containers"][0]["imagePullPolicy"] == policy


@pytest.mark.parametrize("version, capabilities", [
    ("v0.4.0", {"add": ["NET_ADMIN", "NET_RAW", "SYS_TIME"]}),
    ("v0.4.1", {"add": ["NET_ADMIN", "NET_RAW"]}),
    ("v0.8.9", {"add": ["NET_ADMIN", "NET_RAW"]}),
    ("v0.8.10", {"add": ["NET_ADMIN", "NET_RAW"], "drop": ["ALL"]}),
])
def test_capabilities_by_version(version, capabilities):
    context = pod_spec(loaded(version))["containers"][0]["securityContext"]
    assert context == {"capabilities": capabilities}


@pytest.mark.parametrize("version, privileged", [("v0.7.2", False), ("v0.8.0", True)])
def test_masquerade_forwarding_makes_the_container_privileged_from_v0_8_0(version, privileged):
    context = pod_spec(loaded(version, enable_load_balancer=True, lb_forwarding_method="masquerade"))[
        "containers"][0]["securityContext"]
    assert (context == {"privileged": True}) is privileged
    assert env_dict(version, enable_load_balancer=True, lb_forwarding_method="masquerade")[
        "lb_fwdmethod"] == "masquerade"


def test_vip_nodename_comes_from_the_downward_api_from_v0_8_0():
    assert "vip_nodename" not in env_dict("v0.7.2")
    assert env("v0.8.0")[2] == ("vip_nodename", "fieldRef")


# --- Prefix length: vip_cidr / vip_subnet --------------------------------------------------------

@pytest.mark.parametrize("version, options, expected", [
    ("v0.8.0", dict(address=None, vip="192.168.0.1"), [("vip_cidr", "32")]),
    ("v0.8.0", dict(address="fd00::40"), [("vip_cidr", "32")]),  # default "32" even for IPv6
    ("v0.8.1", dict(address=None, vip="192.168.0.1"), []),
    ("v0.8.1", dict(address="fd00::40"), [("vip_cidr", "128")]),
    ("v0.8.10", dict(address="192.168.0.40,fd00::40"), [("vip_cidr", "32,128")]),
    ("v0.8.10", dict(address="fd00::40,192.168.0.40"), [("vip_cidr", "128,32")]),
    ("v0.8.9", dict(cidr="24"), [("vip_cidr", "24")]),
    ("v0.9.0", dict(address="fd00::40"), [("vip_subnet", "128")]),
    ("v1.0.0", dict(address="fd00::40,192.168.0.40"), [("vip_subnet", "128,32")]),
    ("v1.0.1", dict(address="fd00::40,192.168.0.40"), [("vip_subnet", "32,128")]),
    ("v1.0.1", dict(address=None, vip="192.168.0.1"), []),
    ("v1.2.3", dict(vip_subnet="24"), [("vip_subnet", "24")]),
    ("v0.5.6", dict(vip_subnet="24"), [("vip_cidr", "32"), ("vip_subnet", "24")]),
])
def test_prefix_length_rules(version, options, expected):
    pairs = [pair for pair in env(version, **options) if pair[0] in ("vip_cidr", "vip_subnet")]
    assert pairs == expected


def test_address_versus_vip_entry():
    assert env_dict("v0.8.9")["address"] == "192.168.0.40"
    assert "vip_address" not in env_dict("v0.8.9")
    with_vip = env_dict("v0.8.9", address=None, vip="192.168.0.1")
    assert with_vip["vip_address"] == "192.168.0.1" and "address" not in with_vip
    services_only = env_dict("v0.8.9", address=None, controlplane=False)
    assert "vip_address" in services_only and services_only["vip_address"] is None


# --- Env entries that appear or change with the version ------------------------------------------

@pytest.mark.parametrize("version, dns, dhcp", [
    ("v0.6.4", None, None), ("v0.7.0", "first", None), ("v1.0.2", "first", None), ("v1.0.3", "first", "ipv4"),
])
def test_dns_and_dhcp_mode_by_version(version, dns, dhcp):
    values = env_dict(version)
    assert values.get("dns_mode") == dns
    assert values.get("dhcp_mode") == dhcp


def test_dhcp_mode_follows_a_non_default_dns_mode():
    values = env_dict("v1.2.3", dns_mode="ipv6")
    assert (values["dns_mode"], values["dhcp_mode"]) == ("ipv6", "ipv6")


@pytest.mark.parametrize("version, ddns, expected", [
    ("v0.6.4", False, "false"), ("v0.6.4", True, "true"), ("v0.7.0", False, None), ("v0.7.0", True, "true"),
])
def test_vip_ddns_always_before_v0_7_0_then_only_when_set(version, ddns, expected):
    assert env_dict(version, ddns=ddns).get("vip_ddns") == expected


@pytest.mark.parametrize("version, svc_lease, cp_lease", [
    ("v0.6.0", None, None), ("v0.6.1", None, "plndr-cp-lock"), ("v0.6.3", "plndr-svcs-lock", "plndr-cp-lock"),
])
def test_lease_names_appear_with_their_versions(version, svc_lease, cp_lease):
    values = env_dict(version)
    assert values.get("svc_leasename") == svc_lease
    assert values.get("vip_leasename") == cp_lease


@pytest.mark.parametrize("version, timings", [("v1.0.4", ("5", "3", "1")), ("v1.1.0", ("15", "10", "2"))])
def test_lease_timing_defaults_change_in_v1_1_0(version, timings):
    values = env_dict(version)
    assert (values["vip_leaseduration"], values["vip_renewdeadline"], values["vip_retryperiod"]) == timings


@pytest.mark.parametrize("version, options, expected", [
    ("v1.2.3", {}, {"namespace": "kube-system", "name": "plndr-cp-lock"}),
    ("v1.2.3", {"lease_name": "vip-lock", "namespace": "infra"}, {"namespace": "infra", "name": "vip-lock"}),
    ("v0.6.0", {}, {"namespace": "kube-system", "name": "plndr-cp-lock"}),  # no vip_leasename: the fixed name
    ("v1.2.3", {"leader_election": False}, None),
    ("v1.2.3", {"controlplane": False}, None),
])
def test_control_plane_lease_is_the_one_the_manifest_names(version, options, expected):
    merged = dict(ARP, version=version, **options)
    assert control_plane_lease(merged) == expected
    if expected and version >= "v0.6.1":  # the env the kube-vip container reads names the same Lease
        values = env_dict(version, **options)
        assert (values["cp_namespace"], values["vip_leasename"]) == (expected["namespace"], expected["name"])


def test_bgp_has_no_control_plane_lease():
    assert control_plane_lease(dict(BGP, version="v1.2.3")) is None


def test_explicit_lease_timings_are_used():
    values = env_dict("v1.2.3", lease_duration=30, renew_deadline=20, retry_period=4)
    assert (values["vip_leaseduration"], values["vip_renewdeadline"], values["vip_retryperiod"]) == (
        "30", "20", "4")


def test_no_lease_entries_without_leader_election():
    names = [name for name, _value in env("v1.2.3", leader_election=False)]
    assert not [name for name in names if name.startswith(("vip_lease", "vip_renew", "vip_retry"))]


@pytest.mark.parametrize("version, options, entry", [
    ("v0.4.1", {}, None),
    ("v0.5.0", {}, ":2112"),
    ("v0.8.0", dict(prometheus_http_server=""), None),
    ("v0.8.1", dict(prometheus_http_server=""), "name-only"),
    ("v1.2.3", dict(prometheus_http_server="127.0.0.1:9100"), "127.0.0.1:9100"),
])
def test_prometheus_server_entry_by_version(version, options, entry):
    pairs = dict((name, value if value is not None else "name-only") for name, value in env(version, **options))
    assert pairs.get("prometheus_server") == entry


def test_load_balancer_block_gains_forwarding_method_in_v0_4_1():
    assert [n for n, _v in env("v0.4.0", enable_load_balancer=True) if n.startswith("lb_")] == [
        "lb_enable", "lb_port"]
    assert env_dict("v0.4.1", enable_load_balancer=True, lb_port=7443)["lb_port"] == "7443"
    assert env_dict("v0.4.1", enable_load_balancer=True)["lb_fwdmethod"] == "local"


def test_env_order_of_a_full_v1_2_3_command():
    names = [name for name, _value in env(
        "v1.2.3", interface="eth0", lo_interface_global_scope=True, services_interface="eth1",
        ddns=True, autodetectcp=True, services_election=True, lb_class_only=True,
        only_allow_traffic_service_ports=True, enable_node_labeling=True, enable_load_balancer=True,
        enable_endpoints=True, disable_service_updates=True, mirror_dest_interface="eth2",
        health_check_port=8080, preserve_vip_on_leadership_loss=True)]
    assert names == [
        "vip_arp", "port", "vip_nodename", "vip_interface", "vip_interfaceloglobal", "vip_servicesinterface",
        "vip_subnet", "dns_mode", "dhcp_mode", "cp_enable", "cp_namespace", "vip_ddns", "cp_detect",
        "svc_enable", "svc_leasename", "svc_election", "lb_class_only", "enable_service_security",
        "vip_leaderelection", "vip_leasename", "vip_leaseduration", "vip_renewdeadline", "vip_retryperiod",
        "enable_node_labeling", "lb_enable", "lb_port", "lb_fwdmethod", "address", "prometheus_server",
        "enable_endpoints", "disable_service_updates", "mirror_dest_interface", "health_check_port",
        "vip_preserve_on_leadership_loss",
    ]


def test_env_order_of_bgp_block_with_single_peer_flags():
    pairs = env("v0.8.9", arp=False, bgp=True, bgp_router_id="10.0.0.1", local_as=64512,
                peer_address="10.0.0.254", peer_pass="secret", peer_as=64513, source_if="eth0",
                source_ip="10.0.0.1", leader_election=False)
    block = pairs[[name for name, _v in pairs].index("bgp_enable"):]
    assert block[:8] == [("bgp_enable", "true"), ("bgp_routerid", "10.0.0.1"), ("bgp_as", "64512"),
                         ("bgp_peeraddress", "10.0.0.254"), ("bgp_peerpass", "secret"),
                         ("bgp_peeras", "64513"), ("bgp_sourceif", "eth0"), ("bgp_sourceip", "10.0.0.1")]


def test_bgp_peers_from_mappings():
    peers = [dict(address="192.168.0.10", **{"as": 65001}),
             dict(address="fd00::10", password="pw", multihop=True, **{"as": 65002})]
    values = env_dict("v1.2.3", **dict(BGP, bgp_peers=peers))
    assert values["bgp_peers"] == "192.168.0.10:65001::false,[fd00::10]:65002:pw:true"
    with_port = env_dict("v0.8.10", **dict(BGP, bgp_peers=[dict(address="10.0.0.1", port=1790, **{"as": 1})]))
    assert with_port["bgp_peers"] == "10.0.0.1:1::false:1790"


def test_bgp_peer_string_is_copied_verbatim():
    text = "192.168.0.10:65000:pw:true,[fd00::1]:65001::false"
    assert env_dict("v0.8.9", **dict(BGP, bgp_peers=text))["bgp_peers"] == text


# --- Pod and DaemonSet shape ---------------------------------------------------------------------

@pytest.mark.parametrize("version, host_path", [
    ("v0.6.4", "/etc/kubernetes/admin.conf"), ("v0.7.0", "/etc/kubernetes/super-admin.conf"),
])
def test_kubeconfig_host_path_follows_k8s_config_path_from_v0_7_0(version, host_path):
    if version < "v0.7":
        with pytest.raises(KubeVipOptionError, match="needs kube-vip v0.7.0"):
            manifest(version, k8s_config_path="/etc/kubernetes/super-admin.conf")
        spec = pod_spec(loaded(version))
    else:
        spec = pod_spec(loaded(version, k8s_config_path="/etc/kubernetes/super-admin.conf"))
    assert spec["volumes"] == [{"hostPath": {"path": host_path}, "name": "kubeconfig"}]
    assert spec["containers"][0]["volumeMounts"] == [
        {"mountPath": "/etc/kubernetes/admin.conf", "name": "kubeconfig"}]


def test_in_cluster_pod_uses_the_service_account():
    spec = pod_spec(loaded("v1.2.3", in_cluster=True))
    assert spec["serviceAccountName"] == "kube-vip"
    assert "volumes" not in spec and "hostAliases" not in spec
    assert "volumeMounts" not in spec["containers"][0]


def test_pod_without_in_cluster_resolves_kubernetes_locally():
    assert pod_spec(loaded("v1.2.3"))["hostAliases"] == [{"hostnames": ["kubernetes"], "ip": "127.0.0.1"}]


def test_provider_config_mount_follows_the_kubeconfig_in_a_pod():
    spec = pod_spec(loaded("v0.8.9", provider_config="/etc/cloud-sa/cloud-sa.json"))
    assert [volume["name"] for volume in spec["volumes"]] == ["kubeconfig", "cloud-sa-volume"]


@pytest.mark.parametrize("version, labels", [
    ("v0.4.1", {"name": "kube-vip-ds"}),
    ("v0.4.2", {"app.kubernetes.io/name": "kube-vip-ds", "app.kubernetes.io/version": "v0.4.2"}),
])
def test_daemonset_labels_by_version(version, labels):
    document = loaded(version, kind="daemonset", in_cluster=True)
    assert document["spec"]["template"]["metadata"]["labels"] == labels
    assert document["metadata"].get("labels") == (labels if version == "v0.4.2" else None)
    assert list(document["spec"]["selector"]["matchLabels"]) == [list(labels)[0]]


def test_daemonset_without_in_cluster_mounts_the_host_kubeconfig():
    spec = pod_spec(loaded("v1.2.3", kind="daemonset"))
    assert spec["volumes"][0]["hostPath"]["path"] == "/etc/kubernetes/admin.conf"


@pytest.mark.parametrize("version, tag", [("v0.5.11", "v0.5.10"), ("v0.6.1", "v0.6.0"), ("v0.6.2", "v0.6.2")])
def test_image_tag_is_the_built_version(version, tag):
    document = loaded(version, kind="daemonset")
    assert pod_spec(document)["containers"][0]["image"] == "ghcr.io/kube-vip/kube-vip:" + tag
    assert document["metadata"]["labels"]["app.kubernetes.io/version"] == tag


@pytest.mark.parametrize("image, expected", [
    ("registry.example.com/kube-vip/kube-vip", "registry.example.com/kube-vip/kube-vip:v1.2.3"),
    ("registry.example.com:5000/kube-vip:v1.2.2", "registry.example.com:5000/kube-vip:v1.2.2"),
    ("docker.io/plndr/kube-vip", "index.docker.io/plndr/kube-vip:v1.2.3"),
    ("kube-vip", "index.docker.io/library/kube-vip:v1.2.3"),
    ("plndr/kube-vip:v0.3.1", "index.docker.io/plndr/kube-vip:v0.3.1"),
])
def test_image_reference_naming(image, expected):
    assert image_reference(image, "v1.2.3") == expected


def test_image_option_replaces_the_image_also_before_v1_0_1():
    spec = pod_spec(loaded("v0.8.9", image="registry.example.com/kube-vip/kube-vip"))
    assert spec["containers"][0]["image"] == "registry.example.com/kube-vip/kube-vip:v0.8.9"


def test_taint_adds_tolerations_and_control_plane_affinity():
    spec = pod_spec(loaded("v1.2.3", kind="daemonset", in_cluster=True, taint=True))
    assert spec["tolerations"] == [{"effect": "NoSchedule", "operator": "Exists"},
                                   {"effect": "NoExecute", "operator": "Exists"}]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert [term["matchExpressions"][0]["key"] for term in terms] == [
        "node-role.kubernetes.io/master", "node-role.kubernetes.io/control-plane"]


@pytest.mark.parametrize("version, verb", [("v0.9.0", "endoints"), ("v0.9.1", "update")])
def test_rbac_services_rule_by_version(version, verb):
    text = render({"kind": "rbac", "version": version})
    documents = [document for document in yaml.safe_load_all(text) if document]
    assert [document["kind"] for document in documents] == ["ServiceAccount", "ClusterRole", "ClusterRoleBinding"]
    assert documents[1]["rules"][1]["verbs"][-1] == verb
    assert text.startswith("---\n") and text.endswith("\n\n") and text.count("\n\n---\n") == 2


def test_rbac_before_v0_9_0_is_refused():
    with pytest.raises(KubeVipOptionError, match="v0.9.0"):
        render({"kind": "rbac", "version": "v0.8.10"})


def test_output_ends_with_a_blank_line():
    assert manifest("v0.8.9").endswith("}\n\n")


# --- Validation errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("options, message", [
    (dict(address="192.168.0.300"), "is not an IPv4 or IPv6 address"),
    (dict(address="vip.example.com"), "is not an IPv4 or IPv6 address"),
    (dict(address=None, vip="not-an-ip"), "is not an IPv4 or IPv6 address"),
    (dict(vip="192.168.0.41"), "either as address or as vip"),
    (dict(address="192.168.0.40,fd00::40,10.0.0.1"), "more than two addresses"),
    (dict(arp=False), "neither is set"),
    (dict(bgp=True, bgp_router_id="192.168.0.2", bgp_peers="192.168.0.10:65000::false"), "both are set"),
    (dict(controlplane=False, services=False), "nothing to do"),
    (dict(address=None), "controlplane needs the virtual IP"),
    (dict(BGP, bgp_router_id=None), "bgp_router_id"),
    (dict(BGP, bgp_peers=None), "at least one peer"),
    (dict(BGP, bgp_router_id="fd00::2"), "IPv4 address"),
    (dict(BGP, bgp_peers="192.168.0.10"), "is not of the form"),
    (dict(BGP, bgp_peers="192.168.0.10:sixty"), "is not a number"),
    (dict(BGP, bgp_peers="192.168.0.10:65000::maybe"), "multihop 'maybe'"),
    (dict(BGP, version="v1.1.0", bgp_peers="192.168.0.10:65000::"), "empty multihop"),
    (dict(BGP, bgp_peers="fd00::10:65000::false"), "brackets"),
    (dict(BGP, bgp_peers="[fd00::10:65000::false"), "never closes"),
    (dict(BGP, bgp_peers="host.example:65000::false"), "is not an IPv4 or IPv6 address"),
    (dict(BGP, version="v0.8.9", bgp_peers="192.168.0.10:65000:a:false:179"), "at most 4"),
    (dict(BGP, bgp_peers="192.168.0.10:65000:a:false:99999"), "99999 is not a port number"),
    (dict(BGP, bgp_peers=[{"address": "192.168.0.10"}]), "no AS number"),
    (dict(BGP, bgp_peers=[{"as": 1}]), "no address"),
    (dict(BGP, bgp_peers=[{"address": "192.168.0.10", "as": 1, "password": "a:b"}]), "contains ':' or ','"),
    (dict(BGP, bgp_peers=[{"address": "192.168.0.10", "as": 1, "colour": "red"}]), "unknown keys colour"),
    (dict(BGP, bgp_peers=[{"address": "192.168.0.10", "as": 0}]), "AS number between 1"),
    (dict(version="0.8.9"), "not a kube-vip release version"),
    (dict(version="v0.8"), "not a kube-vip release version"),
    (dict(version="v0.3.9"), "older than v0.4.0"),
    (dict(version="v1.3.0"), "newer than v1.2.3"),
    (dict(port=0), "port 0 is not a port number"),
    (dict(port=65536), "port 65536 is not a port number"),
    (dict(enable_load_balancer=True, lb_port=70000), "lb_port 70000"),
    (dict(interface="a-very-long-interface-name"), "not a valid Linux interface name"),
    (dict(interface="eth0:1"), "not a valid Linux interface name"),
    (dict(interface="eth 0"), "not a valid Linux interface name"),
    (dict(kind="deployment"), "kind 'deployment'"),
    (dict(taint=True), "only for kind daemonset"),
    (dict(lease_duration=3, renew_deadline=3), "must be greater than renew_deadline"),
    (dict(renew_deadline=2, retry_period=2), "1.2 x retry_period"),
    (dict(retry_period=0), "1 or more"),
    (dict(dns_mode="both"), "dns_mode 'both'"),
    (dict(namespace="Kube_System"), "not a valid Kubernetes name"),
    (dict(k8s_config_path="admin.conf"), "absolute path"),
    (dict(unknown_flag=True), "Unknown kube-vip option"),
    (dict(image="ghcr.io/kube-vip/kube-vip@sha256:abc"), "digest"),
    (dict(image="GHCR.io/Kube-Vip"), "lowercase"),
    (dict(interface="eth0\n"), "not a valid Linux interface name"),
    (dict(lease_name="lease\nname"), "not a valid Kubernetes name"),
])
def test_bad_input_is_refused_with_a_clear_sentence(options, message):
    with pytest.raises(KubeVipOptionError, match=message.replace("(", r"\(").replace("x retry", "x retry")):
        options = dict(options)
        manifest(options.pop("version", "v1.2.3"), **options)


@pytest.mark.parametrize("version, options, message", [
    ("v0.8.3", dict(lo_interface_global_scope=True), "needs kube-vip v0.8.4"),
    ("v0.9.0", dict(cidr="32"), "removed in kube-vip v0.9.0"),
    ("v0.5.5", dict(vip_subnet="32"), "needs kube-vip v0.5.6"),
    ("v0.6.4", dict(dns_mode="ipv4"), "needs kube-vip v0.7.0"),
    ("v0.6.0", dict(lease_name="my-lock"), "needs kube-vip v0.6.1"),
    ("v0.9.0", dict(provider_config="/etc/cloud-sa/cloud-sa.json"), "removed in kube-vip v0.9.0"),
    ("v1.0.0", dict(enable_endpoint_slices=True), "removed in kube-vip v1.0.0"),
    ("v0.9.2", dict(enable_endpoints=True), "needs kube-vip v1.0.0"),
    ("v0.8.9", dict(health_check_port=8080), "needs kube-vip v0.8.10"),
    ("v1.0.3", dict(preserve_vip_on_leadership_loss=True), "needs kube-vip v1.0.4"),
    ("v0.8.9", dict(BGP, bgp_peers=[{"address": "10.0.0.1", "as": 1, "port": 1790}]), "v0.8.10"),
])
def test_flags_outside_their_versions_are_refused(version, options, message):
    with pytest.raises(KubeVipOptionError, match=message):
        manifest(version, **options)


def test_error_is_a_value_error():
    assert issubclass(KubeVipOptionError, ValueError)


def test_empty_multihop_is_accepted_from_v1_2_0():
    assert env_dict("v1.2.0", **dict(BGP, bgp_peers="192.168.0.10:65000::"))["bgp_peers"] == "192.168.0.10:65000::"


def test_the_same_options_give_the_same_bytes():
    assert manifest("v1.2.3") == manifest("v1.2.3")


def test_default_version_is_the_newest():
    options = dict(ARP)
    assert render(options) == manifest("v1.2.3")
