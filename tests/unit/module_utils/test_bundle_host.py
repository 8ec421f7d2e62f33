# -*- coding: utf-8 -*-
"""_bundle_host: a bundle directory read and hashed, containerd asked and imported into, a bundle built.

Command runs are data-driven: each case gives the argv expected and the rc/stdout/stderr returned."""

import json
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))

import bundle_kit as kit  # noqa: E402

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _bundle as b  # noqa: E402
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _bundle_host as host  # noqa: E402

CTR = "/usr/bin/ctr"
LS = [CTR, "-n", "k8s.io", "images", "ls", "-q"]
SKOPEO = "/usr/bin/skopeo"


class Run(object):
    """A run(argv) that expects the given calls in order; each call may act (as the command would)."""

    def __init__(self, calls):
        self.calls = list(calls)
        self.seen = []

    def __call__(self, argv):
        assert self.calls, "unexpected call %r" % (argv,)
        expected, rc, stdout, stderr, effect = self.calls.pop(0)
        assert argv == expected
        self.seen.append(argv)
        if effect:
            effect(argv)
        return rc, stdout, stderr

    def done(self):
        assert self.calls == [], "calls not made: %r" % (self.calls,)


def call(argv, rc=0, stdout="", stderr="", effect=None):
    return (argv, rc, stdout, stderr, effect)


def verify(directory, **settings):
    return host.verify_bundle(str(directory), kit.VERSION, **settings)


def problems(directory, **settings):
    with pytest.raises(b.BundleError) as raised:
        verify(directory, **settings)
    return raised.value.problems


# ---- verify --------------------------------------------------------------------------------------------


def test_a_bundle_as_written_verifies_and_sha256sum_agrees(tmp_path):
    data = kit.write_bundle(tmp_path)
    assert verify(tmp_path) == data
    checked = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=str(tmp_path), capture_output=True, text=True,
                             check=False)
    assert checked.returncode == 0 and checked.stdout.count(": OK") == len(data["files"]), checked.stdout


def test_a_damaged_and_a_missing_file_are_both_named_before_anything_else_happens(tmp_path):
    data = kit.write_bundle(tmp_path)
    etcd = tmp_path / "images" / "etcd-3.7.0-0.tar"
    etcd.write_bytes(etcd.read_bytes()[:-10])
    (tmp_path / "bin" / "kubectl").unlink()
    found = kit.sha256(etcd.read_bytes())
    assert problems(tmp_path) == [
        "The bundle has no bin/kubectl, which bundle.json lists: copy the whole bundle again from the machine that "
        "built it.",
        "images/etcd-3.7.0-0.tar does not match its sha256 in bundle.json (expected %s, found %s): the copy is damaged "
        "or incomplete; copy it again from the machine that built the bundle (sha256sum -c SHA256SUMS in the bundle "
        "shows every damaged file)." % (kit.sha256(kit.bundle_files()["images/etcd-3.7.0-0.tar"]), found),
    ]
    assert data  # bundle.json itself unchanged


def test_a_link_out_of_the_bundle_is_refused(tmp_path):
    bundle = tmp_path / "bundle"
    kit.write_bundle(bundle)
    outside = tmp_path / "kubelet"
    shutil.move(str(bundle / "bin" / "kubelet"), str(outside))
    os.symlink(str(outside), str(bundle / "bin" / "kubelet"))
    assert problems(bundle) == [
        "bin/kubelet leads outside the bundle (to %s): copy the file itself into the bundle, not a link (rebuild the "
        "bundle with playbooks/bundle.yml (docs/air-gapped.md))." % outside]


def test_no_sha256sums_the_wrong_version_and_the_missing_kube_vip_image_are_listed_together(tmp_path):
    kit.write_bundle(tmp_path, sums=False)
    found = problems(tmp_path, kube_vip_version="v1.0.4")
    assert found == [
        "The bundle holds no image ghcr.io/kube-vip/kube-vip:v1.0.4, the image the kube-vip manifest names "
        "(kube_vip_version v1.0.4, kube_vip_image unset): rebuild the bundle with playbooks/bundle.yml "
        "(docs/air-gapped.md).",
        "The bundle has no SHA256SUMS: rebuild the bundle with playbooks/bundle.yml (docs/air-gapped.md).",
    ]


@pytest.mark.parametrize("where, expected", [
    ("", "No bundle directory was given: set node_prep_bundle_dir to the directory on the controller that holds "
         "bundle.json (see docs/air-gapped.md)."),
    ("missing", "The bundle directory {dir}/missing does not exist on the controller: copy the bundle there, or set "
                "node_prep_bundle_dir to the directory that holds bundle.json."),
    ("bin", "{dir}/bin has no bundle.json: set node_prep_bundle_dir to the bundle's top directory (the one holding "
            "bundle.json, SHA256SUMS, bin/ and images/)."),
])
def test_a_directory_that_is_no_bundle_says_where_to_point(tmp_path, where, expected):
    kit.write_bundle(tmp_path)
    directory = str(tmp_path / where) if where else ""
    with pytest.raises(b.BundleError) as raised:
        host.verify_bundle(directory, kit.VERSION)
    assert raised.value.problems == [expected.format(dir=tmp_path)]


# ---- a node ------------------------------------------------------------------------------------------


def test_the_node_plan_reads_the_binaries_and_asks_containerd(tmp_path):
    data = kit.manifest()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, content in kit.bundle_files().items():
        if name.startswith("bin/"):
            (bin_dir / name[4:]).write_bytes(content)
            (bin_dir / name[4:]).chmod(0o755)
    (bin_dir / "kubectl").chmod(0o700)
    run = Run([call(LS, stdout="\n".join(kit.IMAGES[1:]) + "\n")])
    plan = host.plan_node(data, str(bin_dir), run, CTR)
    run.done()
    assert [entry["name"] for entry in plan["binaries"]] == ["kubectl"]
    assert [entry["path"] for entry in plan["images"]] == ["images/kube-apiserver-v1.37.2.tar"]
    assert plan["containerd_answered"] is True


def test_a_fresh_node_without_containerd_lacks_everything(tmp_path):
    data = kit.manifest()
    run = Run([call(LS, rc=1, stderr='ctr: failed to dial "/run/containerd/containerd.sock": context deadline '
                                    'exceeded\n')])
    plan = host.plan_node(data, str(tmp_path / "nothing"), run, CTR)
    assert len(plan["binaries"]) == 3 and len(plan["images"]) == len(kit.IMAGES)
    assert plan["containerd_answered"] is False
    assert host.plan_node(data, str(tmp_path), Run([]), None)["containerd_answered"] is False  # no ctr at all


PAUSE = {"path": "images/pause-3.10.2.tar", "kind": "image", "references": ["registry.k8s.io/pause:3.10.2"],
         "sha256": "0" * 64}
KUBE_VIP = {"path": "images/kube-vip-v1.2.3.tar", "kind": "image", "references": [kit.KUBE_VIP], "sha256": "1" * 64}


def importing(directory, name):
    return [CTR, "-n", "k8s.io", "images", "import", os.path.join(str(directory), name)]


IMPORT_CASES = [
    dict(id="all-present", listed=["registry.k8s.io/pause:3.10.2", kit.KUBE_VIP, "sha256:abc"],
         calls=lambda d: [call(LS, stdout="registry.k8s.io/pause:3.10.2\n%s\nsha256:abc\n" % kit.KUBE_VIP)],
         imported=[]),
    dict(id="one-lacking",
         calls=lambda d: [
             call(LS, stdout="registry.k8s.io/pause:3.10.2\n"),
             call(importing(d, "kube-vip-v1.2.3.tar"), stdout="unpacking %s (sha256:94ed)...done\n" % kit.KUBE_VIP),
             call(LS, stdout="registry.k8s.io/pause:3.10.2\n%s\n" % kit.KUBE_VIP)],
         imported=["images/kube-vip-v1.2.3.tar"]),
    dict(id="check-mode-imports-nothing", check_mode=True,
         calls=lambda d: [call(LS, stdout="")], imported=["images/pause-3.10.2.tar", "images/kube-vip-v1.2.3.tar"]),
    dict(id="check-mode-without-containerd", check_mode=True,
         calls=lambda d: [call(LS, rc=1, stderr="ctr: connection refused\n")],
         imported=["images/pause-3.10.2.tar", "images/kube-vip-v1.2.3.tar"]),
    dict(id="containerd-down",
         calls=lambda d: [call(LS, rc=1, stderr="ctr: failed to dial: context deadline exceeded\n")],
         fail="containerd did not list its images (ctr -n k8s.io images ls -q: ctr: failed to dial: context deadline "
              "exceeded): node_prep imports the bundle's images into a running containerd; start containerd "
              "(node_prep_manage_services: true does), then run again."),
    dict(id="ctr-refuses-the-archive",
         calls=lambda d: [call(LS, stdout="registry.k8s.io/pause:3.10.2\n"),
                          call(importing(d, "kube-vip-v1.2.3.tar"), rc=1,
                               stderr="ctr: unrecognized image format\n")],
         fail="ctr could not import images/kube-vip-v1.2.3.tar (ctr: unrecognized image format): check that it is "
              "an image archive ctr accepts (docker-archive or OCI), or rebuild the bundle with playbooks/bundle.yml "
              "(docs/air-gapped.md)."),
    dict(id="archive-names-another-image",
         calls=lambda d: [call(LS, stdout="registry.k8s.io/pause:3.10.2\n"),
                          call(importing(d, "kube-vip-v1.2.3.tar"), stdout="unpacking docker.io/library/kv:1...\n"),
                          call(LS, stdout="registry.k8s.io/pause:3.10.2\ndocker.io/library/kv:1\n")],
         fail="After importing images/kube-vip-v1.2.3.tar, containerd does not list ghcr.io/kube-vip/kube-vip:v1.2.3: "
              "the archive must name the image as bundle.json does (RepoTags of a docker-archive, the image name "
              "annotation of an OCI archive); rebuild the bundle with playbooks/bundle.yml (docs/air-gapped.md)."),
]


@pytest.mark.parametrize("case", IMPORT_CASES, ids=[case["id"] for case in IMPORT_CASES])
def test_images_are_imported_only_when_containerd_lacks_them(case, tmp_path):
    for entry in (PAUSE, KUBE_VIP):
        (tmp_path / os.path.basename(entry["path"])).write_bytes(b"archive")
    run = Run(case["calls"](tmp_path))
    if "fail" in case:
        with pytest.raises(b.BundleError) as raised:
            host.import_images([PAUSE, KUBE_VIP], str(tmp_path), run, CTR)
        assert raised.value.problems == [case["fail"]]
    else:
        imported = host.import_images([PAUSE, KUBE_VIP], str(tmp_path), run, CTR,
                                      check_mode=case.get("check_mode", False))
        assert [entry["path"] for entry in imported] == case["imported"]
    run.done()


def test_an_archive_not_copied_to_the_node_is_named(tmp_path):
    run = Run([call(LS, stdout="")])
    with pytest.raises(b.BundleError) as raised:
        host.import_images([PAUSE], str(tmp_path), run, CTR)
    assert raised.value.problems == [
        "%s/pause-3.10.2.tar is not on this node, so registry.k8s.io/pause:3.10.2 cannot be imported: run node_prep "
        "again (it copies the archive there first)." % tmp_path]


# ---- build -------------------------------------------------------------------------------------------


def skopeo_call(directory, reference, rc=0, stderr=""):
    archive = os.path.join(str(directory), kit.archive_name(reference)) + ".partial"

    def fetched(argv):
        with open(archive, "wb") as handle:
            handle.write(kit.docker_archive([reference]))
    argv = [SKOPEO, "copy", "--override-os", "linux", "--override-arch", "amd64", "docker://" + reference,
            "docker-archive:%s:%s" % (archive, reference)]
    return call(argv, rc=rc, stderr=stderr, effect=None if rc else fetched)


def with_binaries(directory):
    (directory / "bin").mkdir(parents=True)
    for name in kit.BINARIES:
        (directory / "bin" / name).write_bytes(kit.bundle_files()["bin/" + name])
    (directory / "images").mkdir()


def build(directory, run, **options):
    return host.build_bundle(str(directory), kit.VERSION, "amd64", kit.KUBEADM_IMAGES, run, skopeo=SKOPEO, **options)


def test_a_bundle_built_from_scratch_fetches_each_image_once_and_verifies(tmp_path):
    with_binaries(tmp_path)
    run = Run([skopeo_call(tmp_path, reference) for reference in kit.IMAGES])
    result = build(tmp_path, run)
    run.done()
    assert [entry["path"] for entry in result["fetched"]] == [kit.archive_name(ref) for ref in kit.IMAGES]
    assert result["written"] == ["bundle.json", "SHA256SUMS"]
    assert verify(tmp_path) == result["manifest"]  # what node_prep will check
    assert [entry["path"] for entry in result["manifest"]["files"]][:3] == ["bin/kubeadm", "bin/kubelet", "bin/kubectl"]
    assert not [name for name in os.listdir(str(tmp_path / "images")) if name.endswith(".partial")]
    checked = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=str(tmp_path), capture_output=True, check=False)
    assert checked.returncode == 0

    # A second build fetches and writes nothing; a new kube-vip version fetches only its image.
    assert build(tmp_path, Run([])) == {"fetched": [], "written": [], "manifest": result["manifest"]}
    run = Run([skopeo_call(tmp_path, "ghcr.io/kube-vip/kube-vip:v1.0.4")])
    again = build(tmp_path, run, kube_vip_version="v1.0.4")
    run.done()
    assert [entry["path"] for entry in again["fetched"]] == ["images/kube-vip-v1.0.4.tar"]
    assert json.loads((tmp_path / "bundle.json").read_text())["kube_vip_version"] == "v1.0.4"


def test_a_damaged_archive_is_fetched_again_and_check_mode_fetches_and_writes_nothing(tmp_path):
    with_binaries(tmp_path)
    build(tmp_path, Run([skopeo_call(tmp_path, reference) for reference in kit.IMAGES]))
    manifest_before = (tmp_path / "bundle.json").read_text()
    (tmp_path / "images" / "etcd-3.7.0-0.tar").write_bytes(b"half")
    preview = build(tmp_path, Run([]), check_mode=True)
    assert [entry["path"] for entry in preview["fetched"]] == ["images/etcd-3.7.0-0.tar"]
    assert (tmp_path / "images" / "etcd-3.7.0-0.tar").read_bytes() == b"half"
    assert (tmp_path / "bundle.json").read_text() == manifest_before
    run = Run([skopeo_call(tmp_path, "registry.k8s.io/etcd:3.7.0-0")])
    assert [entry["path"] for entry in build(tmp_path, run)["fetched"]] == ["images/etcd-3.7.0-0.tar"]
    verify(tmp_path)


def test_a_build_that_fails_writes_no_bundle_json(tmp_path):
    with_binaries(tmp_path)
    # skopeo fails for one image
    run = Run([skopeo_call(tmp_path, ref) for ref in kit.IMAGES[:2]]
              + [skopeo_call(tmp_path, kit.IMAGES[2], rc=1, stderr="FATA[0001] reading manifest v1.37.2: "
                                                                    "connection refused\n")])
    with pytest.raises(b.BundleError) as raised:
        build(tmp_path, run)
    assert raised.value.problems == [
        "skopeo could not fetch registry.k8s.io/kube-scheduler:v1.37.2 (FATA[0001] reading manifest v1.37.2: "
        "connection refused): check the name and that this machine reaches its registry (skopeo login for a "
        "private one), then run again."]
    assert not (tmp_path / "bundle.json").exists()
    # kubeadm's list without kube-proxy: the check node_prep would make fails here already (without a bundle.json
    # that vouches for them, the archives of the failed run are fetched again)
    images = [ref for ref in kit.KUBEADM_IMAGES if "kube-proxy" not in ref]
    run = Run([skopeo_call(tmp_path, ref) for ref in kit.IMAGES if "kube-proxy" not in ref])
    with pytest.raises(b.BundleError, match=r"no image registry.k8s.io/kube-proxy:v1.37.2, which kubeadm 1.37.2 runs"):
        host.build_bundle(str(tmp_path), kit.VERSION, "amd64", images, run, skopeo=SKOPEO)
    assert not (tmp_path / "bundle.json").exists()


def test_a_build_without_binaries_or_skopeo_says_what_to_do(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "kubeadm").write_text("x")
    with pytest.raises(b.BundleError) as raised:
        build(tmp_path, Run([]))
    assert raised.value.problems == [
        "The bundle directory has no bin/kubelet, bin/kubectl: put them there first (playbooks/bundle.yml downloads "
        "kubeadm, kubelet and kubectl)."]
    with_binaries(tmp_path / "b")
    with pytest.raises(b.BundleError, match=r"^This machine has no skopeo, which fetches registry.k8s.io/kube-apiserver"):
        host.build_bundle(str(tmp_path / "b"), kit.VERSION, "amd64", kit.KUBEADM_IMAGES, Run([]), skopeo=None)


def test_an_extra_binary_such_as_crictl_is_listed_after_the_three(tmp_path):
    with_binaries(tmp_path)
    with pytest.raises(b.BundleError, match=r"^The bundle directory has no bin/crictl: put it there first"):
        build(tmp_path, Run([]), extra_binaries=["crictl"])
    (tmp_path / "bin" / "crictl").write_bytes(b"crictl")
    result = build(tmp_path, Run([skopeo_call(tmp_path, reference) for reference in kit.IMAGES]),
                   extra_binaries=["crictl", "kubeadm"])
    names = [entry["name"] for entry in result["manifest"]["files"] if entry["kind"] == "binary"]
    assert names == ["kubeadm", "kubelet", "kubectl", "crictl"]
    assert verify(tmp_path) == result["manifest"]
