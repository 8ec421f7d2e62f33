"""Preflight checks: each refusal and warning of the bootstrap, as data-driven cases."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _preflight as pf  # noqa: E402

CP = ["cp1", "cp2", "cp3"]
WORKERS = ["worker1"]


def node(name, address, **extra):
    report = dict(hostname=name, address=address, interfaces={"lo": ["127.0.0.1/8"], "eth0": [address + "/24"]},
                  default_interface="eth0", kubeadm_path="/usr/bin/kubeadm", cluster_state="none",
                  vip_tcp_answers=False, vip_arp_answers=False)
    report.update(extra)
    return report


def nodes(**overrides):
    result = {name: node(name, "198.51.100.%d" % (11 + i)) for i, name in enumerate(CP + WORKERS)}
    for name, extra in overrides.items():
        result[name].update(extra)
    return result


def settings(**extra):
    base = dict(vip="198.51.100.254", port=6443, kubernetes_version="1.32.4", kube_vip_version="v0.8.9",
                mode="arp", bgp_peers=None, interface=None, init_host=None)
    base.update(extra)
    return base


def run(control_planes=CP, workers=WORKERS, reports=None, **kw):
    return pf.evaluate(settings(**kw), control_planes, workers, nodes() if reports is None else reports)


def test_a_sound_inventory_passes_and_the_first_control_plane_initializes():
    outcome = run()
    assert outcome["errors"] == []
    assert outcome["warnings"] == []
    assert outcome["init_host"] == "cp1"
    assert outcome["cluster_exists"] is False


# (case id, keyword args for run(), words every refusal must contain)
REFUSALS = [
    ("vip missing", dict(vip=None), ["kube_vip_address is not set"]),
    ("vip empty", dict(vip=" "), ["kube_vip_address is not set"]),
    ("vip a name", dict(vip="api.example.org"), ["is not an IP address"]),
    ("vip a node address", dict(vip="198.51.100.12"), ["cp2", "node's own address (on eth0)"]),
    ("kubernetes too old", dict(kubernetes_version="1.28.9"), ["Kubernetes 1.28.9 is not supported", "1.29 to 1.37"]),
    ("kubernetes too new", dict(kubernetes_version="1.38.0"), ["not supported"]),
    ("kubernetes not a version", dict(kubernetes_version="latest"), ["is not a version"]),
    ("kube-vip too old", dict(kube_vip_version="v0.6.4"), ["kube-vip v0.6.4 is not supported", "0.7 to 1.2"]),
    ("kube-vip not a version", dict(kube_vip_version="main"), ["kube_vip_version 'main' is not a version"]),
    ("port out of range", dict(port=70000), ["kube_vip_port 70000 is out of range"]),
    ("port zero", dict(port=0), ["out of range"]),
    ("port not a number", dict(port="https"), ["is not a port number"]),
    ("bgp without peers", dict(mode="bgp", bgp_peers=[]), ["BGP mode needs peers"]),
    ("bgp peer bad address", dict(mode="bgp", bgp_peers="10.0.0.300:65000"), ["BGP peer 1", "not an IP address"]),
    ("bgp peer bad AS", dict(mode="bgp", bgp_peers=[{"address": "10.0.0.1", "as": "x"}]), ["AS 'x'"]),
    ("bgp peer bad multihop", dict(mode="bgp", bgp_peers="10.0.0.1:65000:pw:maybe"), ["multihop 'maybe'"]),
    ("bgp peer bad port", dict(mode="bgp", bgp_peers="10.0.0.1:65000::false:99999"), ["BGP peer 1", "port 99999 is out of range"]),
    ("unknown mode", dict(mode="ospf"), ["mode 'ospf' is unknown"]),
    ("init host not a control plane", dict(init_host="worker1"), ["control_plane_init_host 'worker1'"]),
]


@pytest.mark.parametrize("kwargs,words", [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS])
def test_refusals(kwargs, words):
    errors = run(**kwargs)["errors"]
    assert len(errors) == 1, errors
    for word in words:
        assert word in errors[0]


@pytest.mark.parametrize("kwargs,words", [
    (dict(vip="203.0.113.10"), ["outside the subnet of eth0"]),
    (dict(interface="bond0"), ["interface bond0 does not exist"]),
], ids=["vip outside the subnet", "interface missing"])
def test_per_control_plane_refusals_name_each_control_plane(kwargs, words):
    errors = run(**kwargs)["errors"]
    assert [e.split(":")[0] for e in errors] == CP
    assert all(word in e for e in errors for word in words)


def test_bgp_peer_password_never_appears_in_a_refusal():
    errors = run(mode="bgp", bgp_peers=["10.0.0.1:AS:s3cret:false"])["errors"]
    assert errors and "s3cret" not in errors[0]


def test_well_formed_bgp_peers_pass_and_skip_the_arp_subnet_check():
    outcome = run(mode="bgp", vip="203.0.113.10",
                  bgp_peers="10.0.0.1:65000::false,[2001:db8::1]:65001:pw:true:1179")
    assert outcome["errors"] == []
    outcome = run(mode="bgp", vip="203.0.113.10", bgp_peers=[{"address": "10.0.0.1", "as": 65000, "port": 179}])
    assert outcome["errors"] == []


def test_unset_kube_vip_version_is_the_roles_default_and_not_checked():
    assert run(kube_vip_version=None)["errors"] == []
    assert run(kube_vip_version="v1.3.0")["errors"]


def test_no_control_plane_group():
    errors = run(control_planes=[], workers=WORKERS)["errors"]
    assert any("no control_plane group" in e for e in errors)


def test_even_number_of_control_planes_is_a_warning_not_a_refusal():
    outcome = run(control_planes=["cp1", "cp2"], workers=["cp3", "worker1"])
    assert outcome["errors"] == []
    assert len(outcome["warnings"]) == 1 and "even number" in outcome["warnings"][0]


def test_duplicate_hostnames():
    reports = nodes(cp3={"hostname": "CP1"})
    errors = run(reports=reports)["errors"]
    assert errors == [e for e in errors if "same hostname" in e] and "cp1, cp3" in errors[0]


def test_kubeadm_missing_names_the_node():
    errors = run(reports=nodes(worker1={"kubeadm_path": None}))["errors"]
    assert len(errors) == 1 and errors[0].startswith("worker1: kubeadm is not installed")


def test_interface_missing_only_on_one_control_plane():
    reports = nodes(cp2={"interfaces": {"lo": ["127.0.0.1/8"], "ens3": ["198.51.100.12/24"]}})
    errors = run(reports=reports, interface="eth0")["errors"]
    assert len(errors) == 1 and errors[0].startswith("cp2: interface eth0 does not exist (the node has ens3, lo)")


def test_vip_configured_on_a_node_interface_with_a_subnet_prefix():
    reports = nodes(cp3={"interfaces": {"eth0": ["198.51.100.13/24", "198.51.100.254/24"]}})
    errors = run(reports=reports)["errors"]
    assert len(errors) == 1 and errors[0].startswith("cp3: kube_vip_address 198.51.100.254 is the node's own address (on eth0)")


@pytest.mark.parametrize("probe", ["vip_tcp_answers", "vip_arp_answers"])
def test_vip_answering_while_no_node_has_a_cluster_is_refused(probe):
    errors = run(reports=nodes(cp2={probe: True}))["errors"]
    assert len(errors) == 1 and "already answers (seen from cp2)" in errors[0]


def test_vip_answering_is_expected_once_a_cluster_exists():
    reports = nodes(cp1={"cluster_state": "control_plane", "vip_tcp_answers": True,
                         "interfaces": {"eth0": ["198.51.100.11/24", "198.51.100.254/32"]}})
    outcome = run(reports=reports)
    assert outcome["errors"] == []
    assert outcome["cluster_exists"] is True


def test_vip_answering_after_an_interrupted_init_is_not_a_squatter():
    reports = nodes(cp1={"cluster_state": "partial", "vip_tcp_answers": True})
    assert run(reports=reports)["errors"] == []


def test_an_existing_cluster_keeps_its_init_host_even_when_another_is_configured():
    reports = nodes(cp2={"cluster_state": "control_plane"})
    assert run(reports=reports, init_host="cp3")["init_host"] == "cp2"
    assert run(reports=reports)["init_host"] == "cp2"
    assert run(init_host="cp3")["init_host"] == "cp3"


def test_role_mismatch_with_the_cluster_is_refused():
    errors = run(reports=nodes(worker1={"cluster_state": "control_plane"}, cp1={"cluster_state": "control_plane"}))
    assert [e for e in errors["errors"] if "worker1 is listed in workers" in e]
    errors = run(reports=nodes(cp3={"cluster_state": "worker"}))["errors"]
    assert len(errors) == 1 and errors[0].startswith("cp3 is listed in control_plane")


def test_node_in_both_groups():
    errors = run(workers=["cp3"])["errors"]
    assert any("cp3 are in both" in e for e in errors)
    # one host, not two nodes with the same hostname (the refusal said "cp3, cp3 report the same hostname")
    assert not any("report the same hostname" in e for e in errors), errors


STATES = [
    ((), "none"),
    (("/etc/kubernetes/manifests/kube-apiserver.yaml", "/etc/kubernetes/manifests/etcd.yaml",
      "/etc/kubernetes/kubelet.conf", "/etc/kubernetes/admin.conf", "/etc/kubernetes/pki/ca.crt"), "control_plane"),
    (("/etc/kubernetes/kubelet.conf", "/etc/kubernetes/pki/ca.crt", "/var/lib/kubelet/config.yaml"), "worker"),
    (("/etc/kubernetes/pki/ca.crt", "/etc/kubernetes/admin.conf"), "partial"),
    # a control plane join stopped before its etcd member: apiserver manifest, no etcd manifest
    (("/etc/kubernetes/manifests/kube-apiserver.yaml", "/etc/kubernetes/kubelet.conf",
      "/etc/kubernetes/admin.conf"), "partial"),
]


@pytest.mark.parametrize("present,state", STATES)
def test_classify_state(present, state):
    assert pf.classify_state(present) == state


def test_parse_ip_json_and_default_route():
    links = [{"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
             {"ifname": "eth0", "addr_info": [{"family": "inet", "local": "198.51.100.11", "prefixlen": 24},
                                              {"family": "inet6", "local": "fe80::1", "prefixlen": 64}]},
             {"ifname": "dummy0"}]
    assert pf.parse_ip_addr_json(links) == {"lo": ["127.0.0.1/8"], "eth0": ["198.51.100.11/24", "fe80::1/64"],
                                            "dummy0": []}
    assert pf.default_interface([{"dst": "default", "gateway": "198.51.100.1", "dev": "eth0"}]) == "eth0"
    assert pf.default_interface([]) is None


@pytest.mark.parametrize("text,version", [("1.32.4", (1, 32, 4)), ("v1.29", (1, 29, 0)), ("v0.8.9", (0, 8, 9)),
                                          ("1.33.0-rc.1", (1, 33, 0)), ("x1.2", None), (None, None)])
def test_parse_version(text, version):
    assert pf.parse_version(text) == version


def test_an_unreachable_node_is_refused_by_name_and_left_out_of_the_other_checks():
    unreachable = {"unreachable": True, "changed": False,
                   "msg": "Task failed: Failed to connect to the host via ssh: ssh: connect to host "
                          "198.51.100.11 port 22: Connection timed out"}
    reports = nodes()
    reports["cp1"] = unreachable
    outcome = run(reports=reports)
    assert outcome["errors"] == [
        "cp1 is unreachable (Failed to connect to the host via ssh: ssh: connect to host 198.51.100.11 port 22: "
        "Connection timed out): power it on and check that SSH answers, or remove it from the inventory, then "
        "run again."]
    # not "kubeadm is not installed" or "no interface" for a node that reported nothing
    assert outcome["init_host"] == "cp1"


def test_every_unreachable_node_is_named():
    reports = nodes(worker1={"unreachable": True, "msg": "timed out"})
    reports["cp2"] = {"unreachable": True}
    errors = run(reports=reports)["errors"]
    assert [e.split(" ", 1)[0] for e in errors] == ["cp2", "worker1"]
    assert "(no answer)" in errors[0] and "(timed out)" in errors[1]


PROCESSES = [
    (1, ["/sbin/init"]),
    (286, ["/usr/bin/kubeadm", "init", "--config", "/etc/kubernetes/vipadm/kubeadm-init.yaml", "--upload-certs"]),
    (301, ["/bin/sh", "/usr/local/bin/kubeadm", "join", "--config", "/etc/kubernetes/vipadm/kubeadm-join.yaml"]),
    (302, ["kubeadm", "--v=5", "reset", "-f"]),
    (310, ["/usr/bin/kubeadm", "init", "phase", "upload-certs", "--upload-certs"]),  # join credentials: not counted
    (311, ["/usr/bin/kubeadm", "token", "create"]),
    (312, ["/usr/bin/kubeadm", "version", "-o", "short"]),
    (320, ["/usr/bin/python3", "-c", "kubeadm init"]),
    (330, ["/usr/bin/kubelet", "--config=/var/lib/kubelet/config.yaml"]),
]


def test_running_kubeadm_finds_init_join_and_reset_only():
    assert pf.running_kubeadm(PROCESSES) == [(286, "kubeadm init"), (301, "kubeadm join"), (302, "kubeadm reset")]
    assert pf.running_kubeadm([]) == []


def test_a_kubeadm_init_still_running_is_refused_by_name():
    reports = nodes(cp1={"kubeadm_running": ["kubeadm init (PID 286)"], "kubeadm_waited": 300.0})
    errors = run(reports=reports)["errors"]
    assert errors == ["cp1: kubeadm init (PID 286) still running after 300.0 s (left by a run that stopped half-way, "
                      "e.g. its controller was killed): wait for it to end, or stop it, then run again."]
    assert run(reports=nodes(cp1={"kubeadm_running": [], "kubeadm_waited": 12.5}))["errors"] == []


# kubeadm's skew rules (constants.go of 1.29-1.37): kubeadm deploys its minor and the one before; a kubelet is at
# most 3 minors older than kubeadm and never newer than the control plane. The real kubeadm's refusals are
# checked against these by tests/integration/test_kubeadm_config_validate.py.
@pytest.mark.parametrize("target, kubeadm, kubelet, words", [
    ("1.36.3", "v1.36.3", "Kubernetes v1.36.3", None),
    ("1.36.3", "v1.37.2", "Kubernetes v1.36.3", None),
    ("1.36.3", "v1.37.2", "Kubernetes v1.34.0", None),
    ("1.36.3", None, None, None),
    ("1.36.3", "v1.35.8", None, "cp2: kubeadm v1.35.8 is older than Kubernetes 1.36.3, and kubeadm refuses to deploy "
                                "a newer Kubernetes than itself: install the 1.36 release"),
    ("1.35.8", "v1.37.2", None, "cp2: kubeadm v1.37.2 deploys Kubernetes 1.37 and 1.36 only, not 1.35.8"),
    ("1.36.3", "v1.36.3", "Kubernetes v1.37.2", "cp2: kubelet v1.37.2 is newer than Kubernetes 1.36.3"),
    ("1.36.3", "v1.37.2", "Kubernetes v1.33.13", "cp2: kubelet v1.33.13 is older than kubeadm v1.37.2 supports (1.34 "
                                                 "and newer)"),
])
def test_installed_kubeadm_and_kubelet_follow_kubeadms_skew_rules(target, kubeadm, kubelet, words):
    reports = nodes(cp2={"kubeadm_version": kubeadm, "kubelet_version": kubelet})
    errors = run(reports=reports, kubernetes_version=target)["errors"]
    if words is None:
        assert errors == []
    else:
        assert len(errors) == 1 and errors[0].startswith(words), errors


def test_release_text_of_kubeadm_and_kubelet_parse():
    from ansible_collections.vipadm.kubeadm.plugins.module_utils import _versions
    assert _versions.parse_release("Kubernetes v1.36.3") == (1, 36, 3)
    assert _versions.parse_release("v1.37.0-rc.1+abc") == (1, 37, 0)
    assert _versions.parse_release("") is None and _versions.parse_release("kubeadm") is None
