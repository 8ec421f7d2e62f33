# -*- coding: utf-8 -*-
"""The kube_vip_manifest module: file placement, idempotence, check mode, diff, errors, no_log."""

import json
import os
import stat
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, ".collections"))
sys.path.insert(0, os.path.join(REPO, "tests", "unit", "fixtures"))

from module_main import run_main  # noqa: E402

from ansible_collections.vipadm.kubeadm.plugins.modules import kube_vip_manifest  # noqa: E402
from ansible_collections.vipadm.kubeadm.plugins.module_utils._kube_vip import DEFAULT_VERSION  # noqa: E402

FIXTURES = os.path.join(REPO, "tests", "fixtures", "kube-vip")  # real kube-vip output
ARP = dict(version="v0.8.9", address="192.168.0.40", interface="eth0", arp=True, controlplane=True,
           services=True, leader_election=True)


def run_module(capsys, check_mode=False, diff=False, **args):
    return run_main(kube_vip_manifest, args, capsys, check_mode, diff)


def reference(name):
    """``v0.8.9-<case>`` -> what kube-vip v0.8.9 printed for that case (tests/fixtures/kube-vip)."""
    tag, _sep, case = name.partition("-")
    with open(os.path.join(FIXTURES, tag, case + ".stdout")) as handle:
        return handle.read()


def test_writes_the_manifest_with_mode_0600_in_a_new_0700_directory(tmp_path, capsys):
    dest = tmp_path / "manifests" / "kube-vip.yaml"
    result = run_module(capsys, dest=str(dest), **ARP)
    assert result["rc"] == 0 and result["changed"] is True
    assert result["dest"] == str(dest)
    assert dest.read_text() == reference("v0.8.9-arp-controlplane-services") == result["manifest"]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert stat.S_IMODE(dest.parent.stat().st_mode) == 0o700
    if os.geteuid() == 0:
        assert (dest.stat().st_uid, dest.stat().st_gid) == (0, 0)
    assert [p.name for p in dest.parent.iterdir()] == ["kube-vip.yaml"]  # no temporary file left


def test_second_run_changes_nothing(tmp_path, capsys):
    dest = str(tmp_path / "kube-vip.yaml")
    run_module(capsys, dest=dest, **ARP)
    before = os.stat(dest)
    result = run_module(capsys, dest=dest, **ARP)
    assert result["changed"] is False
    assert os.stat(dest).st_mtime_ns == before.st_mtime_ns


def test_wrong_mode_is_repaired(tmp_path, capsys):
    dest = str(tmp_path / "kube-vip.yaml")
    run_module(capsys, dest=dest, **ARP)
    os.chmod(dest, 0o644)
    assert run_module(capsys, dest=dest, **ARP)["changed"] is True
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o600


def test_check_mode_writes_nothing_but_reports_the_change(tmp_path, capsys):
    dest = tmp_path / "manifests" / "kube-vip.yaml"
    result = run_module(capsys, check_mode=True, dest=str(dest), **ARP)
    assert result["changed"] is True
    assert not dest.parent.exists()


def test_diff_shows_before_and_after(tmp_path, capsys):
    dest = tmp_path / "kube-vip.yaml"
    run_module(capsys, dest=str(dest), **ARP)
    changed = dict(ARP, k8s_config_path="/etc/kubernetes/super-admin.conf")
    result = run_module(capsys, diff=True, check_mode=True, dest=str(dest), **changed)
    assert result["changed"] is True
    assert result["diff"]["before"] == reference("v0.8.9-arp-controlplane-services")
    assert result["diff"]["after"] == reference("v0.8.9-arp-controlplane-services-superadmin")
    assert dest.read_text() == reference("v0.8.9-arp-controlplane-services")


def test_no_diff_unless_asked(tmp_path, capsys):
    assert "diff" not in run_module(capsys, dest=str(tmp_path / "k.yaml"), **ARP)


def test_bad_input_fails_before_writing(tmp_path, capsys):
    dest = tmp_path / "manifests" / "kube-vip.yaml"
    result = run_module(capsys, dest=str(dest), **dict(ARP, address="192.168.0.400"))
    assert result["failed"] is True and "is not an IPv4 or IPv6 address" in result["msg"]
    assert not dest.parent.exists()


def test_address_and_vip_are_mutually_exclusive(tmp_path, capsys):
    result = run_module(capsys, dest=str(tmp_path / "k.yaml"), vip="192.168.0.41", **ARP)
    assert result["failed"] is True and "mutually exclusive" in result["msg"]


def test_daemonset_is_refused_in_the_static_pod_directory(capsys):
    result = run_module(capsys, kind="daemonset", **ARP)
    assert result["failed"] is True and "static Pod directory" in result["msg"]


def test_bgp_peer_passwords_are_hidden_from_the_result(tmp_path, capsys):
    dest = tmp_path / "kube-vip.yaml"
    args = dict(version="v1.2.3", address="192.168.0.40", interface="lo", bgp=True, controlplane=True,
                bgp_router_id="192.168.0.2",
                bgp_peers=[{"address": "192.168.0.10", "as": 65000, "password": "s3cretpw"}])
    result = run_module(capsys, dest=str(dest), **args)
    assert result["changed"] is True
    assert "s3cretpw" not in json.dumps(result)
    assert "192.168.0.10:65000:s3cretpw:false" in dest.read_text()  # the file itself has it


def test_bgp_peer_text_form_and_its_password(tmp_path, capsys):
    dest = tmp_path / "kube-vip.yaml"
    args = dict(version="v1.2.3", address="192.168.0.40", interface="lo", bgp=True, controlplane=True,
                bgp_router_id="192.168.0.2", bgppeers="192.168.0.10:65000:t0psecret:false")
    result = run_module(capsys, dest=str(dest), **args)
    assert "t0psecret" not in json.dumps(result)
    assert "value: 192.168.0.10:65000:t0psecret:false" in dest.read_text()


def test_documented_defaults_match_the_renderer():
    spec = kube_vip_manifest.ARGUMENT_SPEC
    assert spec["version"]["default"] == DEFAULT_VERSION
    assert spec["bgp_peers"]["options"]["password"]["no_log"] is True
    assert spec["peer_pass"]["no_log"] is True
