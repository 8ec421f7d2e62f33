# -*- coding: utf-8 -*-
"""The node_prep_plan module: reads os-release, never changes anything, refuses with fail_json."""

import os
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, ".collections"))
sys.path.insert(0, os.path.join(REPO, "tests", "unit", "fixtures"))

from module_main import run_main  # noqa: E402

from ansible_collections.vipadm.kubeadm.plugins.modules import node_prep_plan  # noqa: E402


def run_module(capsys, monkeypatch, os_release, check_mode=False, **args):
    monkeypatch.setattr(node_prep_plan, "OS_RELEASE_PATHS", tuple(str(path) for path in os_release))
    return run_main(node_prep_plan, args, capsys, check_mode)


@pytest.mark.parametrize("check_mode", [False, True])
def test_plans_from_the_node_os_release_without_changing_anything(tmp_path, capsys, monkeypatch, check_mode):
    os_release = tmp_path / "os-release"
    os_release.write_text('ID=ubuntu\nVERSION_ID="22.04"\n')
    result = run_module(capsys, monkeypatch, [os_release], check_mode=check_mode, kubernetes_version="1.34.1")
    assert result["rc"] == 0 and result["changed"] is False
    assert result["pause_image"] == "registry.k8s.io/pause:3.10.1"
    assert result["platform"]["codename"] == "jammy"
    assert result["kubernetes_packages"][0] == "kubelet=1.34.1-*"


def test_falls_back_to_usr_lib_os_release(tmp_path, capsys, monkeypatch):
    fallback = tmp_path / "usr-lib-os-release"
    fallback.write_text('ID="rocky"\nVERSION_ID="9.4"\n')
    result = run_module(capsys, monkeypatch, [tmp_path / "missing", fallback], kubernetes_version="1.31.0")
    assert result["rc"] == 0 and result["package_manager"] == "dnf"


def test_refusal_is_a_failure_with_the_sentence(tmp_path, capsys, monkeypatch):
    os_release = tmp_path / "os-release"
    os_release.write_text('PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nID=debian\nVERSION_ID="11"\n')
    result = run_module(capsys, monkeypatch, [os_release], kubernetes_version="1.32.4")
    assert result["rc"] == 1 and result["failed"] is True
    assert result["msg"].startswith("node_prep does not support Debian GNU/Linux 11 (bullseye)")


def test_image_repository_and_sources_are_passed_through(tmp_path, capsys, monkeypatch):
    os_release = tmp_path / "os-release"
    os_release.write_text("ID=debian\nVERSION_ID=12\n")
    result = run_module(
        capsys, monkeypatch, [os_release], kubernetes_version="1.29.3", image_repository="registry.example",
        containerd_source="docker", kubernetes_repository_url="http://mirror.example/v1.29/deb/",
    )
    assert result["pause_image"] == "registry.example/pause:3.9"
    assert result["containerd_package"] == "containerd.io"
    assert result["kubernetes_repository"]["key_url"] == "http://mirror.example/v1.29/deb/Release.key"


def test_the_cni_plugin_directory_is_passed_through_and_a_relative_one_refused(tmp_path, capsys, monkeypatch):
    os_release = tmp_path / "os-release"
    os_release.write_text("ID=debian\nVERSION_ID=12\n")
    result = run_module(capsys, monkeypatch, [os_release], kubernetes_version="1.36.3", cni_bin_dir="/usr/lib/cni")
    assert (result["cni_bin_dir"], result["containerd_1_support"]) == ("/usr/lib/cni", "fallback")
    result = run_module(capsys, monkeypatch, [os_release], kubernetes_version="1.36.3", cni_bin_dir="lib/cni")
    assert result["failed"] is True and result["msg"].startswith("node_prep_cni_bin_dir is 'lib/cni'")
