# -*- coding: utf-8 -*-
"""The bundle modules: arguments, results, failures with their sentences, check mode. main() runs in this
process with AnsibleModule.run_command and get_bin_path patched (the argv expected, what it returns)."""

import json
import os
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, ".collections"))
sys.path.insert(0, os.path.join(REPO, "tests", "unit", "fixtures"))

import bundle_kit as kit  # noqa: E402
from module_main import run_main  # noqa: E402

from ansible.module_utils import basic  # noqa: E402
from ansible_collections.vipadm.kubeadm.plugins.modules import (  # noqa: E402
    bundle_build,
    bundle_import,
    bundle_plan,
    bundle_verify,
    node_prep_plan,
)

CTR = "/usr/bin/ctr"
LS = [CTR, "-n", "k8s.io", "images", "ls", "-q"]


@pytest.fixture
def commands(monkeypatch):
    """Patch the module's commands: set ``expected`` to [(argv, rc, stdout, stderr, effect)]; ``bins`` maps names."""
    state = {"expected": [], "seen": [], "bins": {"ctr": CTR, "skopeo": "/usr/bin/skopeo"}}

    def run_command(self, argv, **_kwargs):
        assert state["expected"], "unexpected command %r" % (argv,)
        expected, rc, stdout, stderr, effect = state["expected"].pop(0)
        assert argv == expected
        state["seen"].append(argv)
        if effect:
            effect()
        return rc, stdout, stderr

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return state["bins"].get(name)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)
    return state


# ---- bundle_verify -------------------------------------------------------------------------------------


@pytest.mark.parametrize("check_mode", [False, True])
def test_verify_returns_the_manifest_and_the_images_the_cluster_runs(tmp_path, capsys, commands, check_mode):
    data = kit.write_bundle(tmp_path)
    result = run_main(bundle_verify, {"path": str(tmp_path), "kubernetes_version": "1.37.2"}, capsys, check_mode)
    assert result["rc"] == 0 and result["changed"] is False, result
    assert result["manifest"] == data
    assert {"name": "kube-vip", "reference": "ghcr.io/kube-vip/kube-vip:v1.2.3"} in result["required_images"]
    assert {"name": "etcd", "repository": "registry.k8s.io/etcd"} in result["required_images"]
    assert commands["seen"] == []


def test_verify_fails_with_every_problem_and_names_the_bundle(tmp_path, capsys, commands):
    kit.write_bundle(tmp_path)
    (tmp_path / "images" / "pause-3.10.2.tar").write_bytes(b"damaged")
    result = run_main(bundle_verify, {"path": str(tmp_path), "kubernetes_version": "1.37.2",
                                      "kube_vip_image": "mirror.example/kube-vip"}, capsys)
    assert result["rc"] == 1 and result["failed"] is True
    assert result["msg"].startswith("The bundle %s cannot be used: The bundle holds no image "
                                    "mirror.example/kube-vip:v1.2.3, the image the kube-vip manifest names" % tmp_path)
    assert len(result["problems"]) == 2
    assert result["problems"][1].startswith("images/pause-3.10.2.tar does not match its sha256 in bundle.json")


def test_verify_without_a_directory_says_which_variable_to_set(capsys, commands):
    result = run_main(bundle_verify, {"path": "", "kubernetes_version": "1.37.2"}, capsys)
    assert result["failed"] is True and result["msg"].startswith("No bundle directory was given: set node_prep_bundle_dir")


# ---- bundle_plan ---------------------------------------------------------------------------------------


def test_plan_lists_what_the_node_lacks_and_changes_nothing(tmp_path, capsys, commands):
    data = kit.manifest()
    commands["expected"] = [(LS, 0, "registry.k8s.io/pause:3.10.2\n", "", None)]
    result = run_main(bundle_plan, {"manifest": data, "bin_dir": str(tmp_path)}, capsys, check_mode=True)
    assert result["rc"] == 0 and result["changed"] is False
    assert [entry["name"] for entry in result["binaries"]] == ["kubeadm", "kubelet", "kubectl"]
    assert len(result["images"]) == len(kit.IMAGES) - 1 and result["containerd_answered"] is True
    assert "images/pause-3.10.2.tar" not in [entry["path"] for entry in result["images"]]


def test_plan_without_ctr_counts_every_image_and_refuses_a_broken_manifest(tmp_path, capsys, commands):
    commands["bins"] = {}
    result = run_main(bundle_plan, {"manifest": kit.manifest(), "bin_dir": str(tmp_path)}, capsys)
    assert result["containerd_answered"] is False and len(result["images"]) == len(kit.IMAGES)
    broken = dict(kit.manifest(), format=2)
    result = run_main(bundle_plan, {"manifest": broken}, capsys)
    assert result["failed"] is True and result["msg"].startswith("bundle.json has format 2")


# ---- bundle_import -------------------------------------------------------------------------------------


def import_args(tmp_path):
    images = [entry for entry in kit.manifest()["files"]
              if entry["path"] in ("images/pause-3.10.2.tar", "images/kube-vip-v1.2.3.tar")]
    for entry in images:
        (tmp_path / os.path.basename(entry["path"])).write_bytes(b"archive")
    return {"images": images, "archive_dir": str(tmp_path)}


def test_import_in_check_mode_reports_and_runs_no_import(tmp_path, capsys, commands):
    commands["expected"] = [(LS, 0, "registry.k8s.io/pause:3.10.2\n", "", None)]
    result = run_main(bundle_import, import_args(tmp_path), capsys, check_mode=True)
    assert result["changed"] is True and result["imported"] == ["images/kube-vip-v1.2.3.tar"]
    assert result["references"] == [kit.KUBE_VIP]
    assert commands["expected"] == []


def test_import_runs_ctr_for_the_lacking_image_and_then_changes_nothing(tmp_path, capsys, commands):
    archive = os.path.join(str(tmp_path), "kube-vip-v1.2.3.tar")
    commands["expected"] = [
        (LS, 0, "registry.k8s.io/pause:3.10.2\n", "", None),
        ([CTR, "-n", "k8s.io", "images", "import", archive], 0, "unpacking ...done\n", "", None),
        (LS, 0, "registry.k8s.io/pause:3.10.2\n%s\n" % kit.KUBE_VIP, "", None),
    ]
    result = run_main(bundle_import, import_args(tmp_path), capsys)
    assert result["rc"] == 0 and result["changed"] is True and result["imported"] == ["images/kube-vip-v1.2.3.tar"]
    commands["expected"] = [(LS, 0, "registry.k8s.io/pause:3.10.2\n%s\n" % kit.KUBE_VIP, "", None)]
    result = run_main(bundle_import, import_args(tmp_path), capsys)
    assert result["changed"] is False and result["imported"] == []


def test_import_fails_with_a_sentence_when_containerd_does_not_answer(tmp_path, capsys, commands):
    commands["expected"] = [(LS, 1, "", "ctr: connection refused\n", None)]
    result = run_main(bundle_import, import_args(tmp_path), capsys)
    assert result["failed"] is True
    assert result["msg"].startswith("containerd did not list its images (ctr -n k8s.io images ls -q: ctr: connection "
                                    "refused): node_prep imports the bundle's images into a running containerd")


# ---- bundle_build --------------------------------------------------------------------------------------


def test_build_fetches_writes_and_a_second_run_changes_nothing(tmp_path, capsys, commands):
    (tmp_path / "bin").mkdir()
    for name in kit.BINARIES:
        (tmp_path / "bin" / name).write_bytes(kit.bundle_files()["bin/" + name])

    def fetch(reference):
        partial = os.path.join(str(tmp_path), kit.archive_name(reference)) + ".partial"

        def effect():
            os.makedirs(os.path.dirname(partial), exist_ok=True)
            with open(partial, "wb") as handle:
                handle.write(kit.docker_archive([reference]))
        argv = ["/usr/bin/skopeo", "copy", "--override-os", "linux", "--override-arch", "arm64",
                "--src-tls-verify=false", "docker://" + reference, "docker-archive:%s:%s" % (partial, reference)]
        return (argv, 0, "", "", effect)

    args = {"path": str(tmp_path), "kubernetes_version": "1.37.2", "architecture": "arm64",
            "kubeadm_images": kit.KUBEADM_IMAGES, "extra_images": ["docker.io/calico/node:v3.29.1"],
            "skopeo_options": ["--src-tls-verify=false"]}
    preview = run_main(bundle_build, args, capsys, check_mode=True)
    assert preview["changed"] is True and preview["manifest"] is None
    assert len(preview["fetched"]) == len(kit.IMAGES) + 1 and not (tmp_path / "bundle.json").exists()

    commands["expected"] = [fetch(ref) for ref in kit.IMAGES + ["docker.io/calico/node:v3.29.1"]]
    result = run_main(bundle_build, args, capsys)
    assert result["rc"] == 0 and result["changed"] is True, result
    assert result["written"] == ["bundle.json", "SHA256SUMS"]
    written = json.loads((tmp_path / "bundle.json").read_text())
    assert written == result["manifest"] and written["architecture"] == "arm64"
    assert written["files"][-1]["path"] == "images/node-v3.29.1.tar"

    again = run_main(bundle_build, args, capsys)
    assert again["changed"] is False and again["fetched"] == [] and again["written"] == []
    assert commands["expected"] == []


# ---- node_prep_plan in bundle mode -----------------------------------------------------------------------


def plan_node(capsys, monkeypatch, tmp_path, machine="x86_64", **args):
    os_release = tmp_path / "os-release"
    os_release.write_text("ID=debian\nVERSION_ID=12\n")
    monkeypatch.setattr(node_prep_plan, "OS_RELEASE_PATHS", (str(os_release),))
    monkeypatch.setattr(node_prep_plan, "machine", lambda: machine)
    return run_main(node_prep_plan, dict({"kubernetes_version": "1.37.2"}, **args), capsys, check_mode=True)


def test_node_prep_plan_returns_the_architecture_and_the_packages_of_bundle_mode(tmp_path, capsys, monkeypatch,
                                                                                 commands):
    result = plan_node(capsys, monkeypatch, tmp_path, bundle=kit.manifest())
    assert result["rc"] == 0 and result["architecture"] == "amd64"
    assert result["bundle_packages"] == ["containerd.io", "conntrack", "iptables", "iproute2", "ethtool", "socat"]


def test_node_prep_plan_refuses_a_node_the_bundle_cannot_serve(tmp_path, capsys, monkeypatch, commands):
    commands["bins"] = {}  # no containerd on the node
    result = plan_node(capsys, monkeypatch, tmp_path, machine="aarch64", bundle=kit.manifest(),
                       pause_image="registry.k8s.io/pause:3.9", require_containerd=True)
    assert result["failed"] is True
    assert [problem.split(":")[0] for problem in result["problems"]] == [
        "This node is aarch64 (arm64), but the bundle holds binaries and images for amd64",
        "The bundle holds no image registry.k8s.io/pause",
        "This node has no containerd, and node_prep installs none with node_prep_install_packages false",
    ]
    # without a bundle (packages mode) none of this is checked
    assert plan_node(capsys, monkeypatch, tmp_path, machine="aarch64", require_containerd=True)["rc"] == 0
    commands["bins"] = {"containerd": "/usr/bin/containerd"}
    assert plan_node(capsys, monkeypatch, tmp_path, bundle=kit.manifest(), require_containerd=True)["rc"] == 0
