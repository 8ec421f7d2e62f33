"""The bundle writer (lab/components/bundle.py) on a fake pin build of small files in a temporary cache:
the format node_prep reads, `sha256sum -c SHA256SUMS`, hard links or copies, and nothing written twice.
No root, no Go, no lab."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from lab.components import bundle, images
from lab.components.build import BuildError, PinBuild, Result

REFERENCES = {
    "kubernetes": {"kube-apiserver": "registry.k8s.io/kube-apiserver:v1.37.2",
                   "kube-proxy": "registry.k8s.io/kube-proxy:v1.37.2"},
    "coredns": {"coredns": "registry.k8s.io/coredns/coredns:v1.14.6"},
    "kube-vip": {"kube-vip": "ghcr.io/kube-vip/kube-vip:v1.2.3"},
}  # fmt: skip


def _fake_build(tmp_path) -> PinBuild:
    """A PinBuild whose results are small files in tmp_path/cache, laid out as the builder's."""
    results = {}
    for component, references in REFERENCES.items():
        path = tmp_path / "cache" / f"{component}-x-0123456789abcdef"
        (path / "bin").mkdir(parents=True)
        (path / "images").mkdir()
        for name in {"kubernetes": bundle.BINARIES}.get(component, ()):
            (path / "bin" / name).write_text(f"#!/bin/sh\necho {name}\n")
            (path / "bin" / name).chmod(0o755)
        for name, reference in references.items():
            content = tmp_path / f"{name}.content"
            content.write_text(f"the {name} program\n")
            images.write_image(images.ImageSpec((reference,), {f"usr/local/bin/{name}": str(content)}, (f"/{name}",)),
                               path / "images" / f"{name}.tar")  # fmt: skip
        (path / "build.json").write_text(json.dumps({"images": references}))
        results[component] = Result(component, "x", path, False, {"images": references})
    return PinBuild("1.37.2", "v1.2.3", results)


def _sha256sum_check(directory) -> subprocess.CompletedProcess:
    return subprocess.run(["sha256sum", "--strict", "-c", "SHA256SUMS"], cwd=directory, capture_output=True, text=True)


def test_the_bundle_has_the_format_node_prep_reads_and_sha256sum_checks_it(tmp_path):
    build = _fake_build(tmp_path)
    written = bundle.write_bundle(build, tmp_path / "bundle")
    directory = tmp_path / "bundle"
    manifest = json.loads((directory / "bundle.json").read_text())
    assert manifest == written.manifest
    assert {k: manifest[k] for k in ("format", "kubernetes_version", "kube_vip_version", "architecture")} == {
        "format": 1, "kubernetes_version": "1.37.2", "kube_vip_version": "v1.2.3", "architecture": bundle.architecture()}  # fmt: skip
    paths = [entry["path"] for entry in manifest["files"]]
    assert paths == ["bin/kubeadm", "bin/kubelet", "bin/kubectl", "images/coredns-v1.14.6.tar",
                     "images/kube-apiserver-v1.37.2.tar", "images/kube-proxy-v1.37.2.tar", "images/kube-vip-v1.2.3.tar"]  # fmt: skip
    assert manifest["files"][0] == {"path": "bin/kubeadm", "kind": "binary", "name": "kubeadm",
                                    "sha256": bundle.sha256_file(directory / "bin" / "kubeadm")}  # fmt: skip
    coredns = manifest["files"][3]
    assert coredns["kind"] == "image" and coredns["references"] == ["registry.k8s.io/coredns/coredns:v1.14.6"]
    assert images.read_image_references(directory / coredns["path"]) == coredns["references"]
    for name in bundle.BINARIES:
        assert (directory / "bin" / name).stat().st_mode & 0o7777 == 0o755
    assert sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()) == sorted(
        paths + ["SHA256SUMS", "bundle.json"])  # fmt: skip
    assert (directory / "SHA256SUMS").read_text() == "".join(f"{e['sha256']}  {e['path']}\n" for e in manifest["files"])
    check = _sha256sum_check(directory)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count(": OK\n") == len(paths)
    # hard links from the cache (same file system): the bundle takes no space
    assert os.stat(directory / "bin" / "kubelet").st_ino == build.binary("kubelet").stat().st_ino
    assert written.written == paths and written.size == sum((directory / p).stat().st_size for p in paths)


def test_a_second_write_writes_nothing_and_a_changed_file_is_written_again(tmp_path):
    build = _fake_build(tmp_path)
    directory = tmp_path / "bundle"
    bundle.write_bundle(build, directory)
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in directory.rglob("*") if p.is_file()}
    again = bundle.write_bundle(build, directory)
    assert again.written == []
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in directory.rglob("*") if p.is_file()} == before
    image = directory / "images" / "kube-vip-v1.2.3.tar"
    image.unlink()
    image.write_bytes(b"not the image\n")  # another file in its place (the cache's is untouched)
    (directory / "bin" / "kubectl").unlink()  # and one gone
    assert _sha256sum_check(directory).returncode != 0
    fixed = bundle.write_bundle(build, directory)
    assert fixed.written == ["bin/kubectl", "images/kube-vip-v1.2.3.tar"]
    assert _sha256sum_check(directory).returncode == 0
    assert not [p for p in directory.rglob(".*")]  # no temporary file left behind


def test_on_another_file_system_the_files_are_copies_checked_by_content(tmp_path, monkeypatch):
    build = _fake_build(tmp_path)
    directory = tmp_path / "bundle"

    def no_link(source, target):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(bundle.os, "link", no_link)
    bundle.write_bundle(build, directory)
    kubeadm = directory / "bin" / "kubeadm"
    assert kubeadm.stat().st_ino != build.binary("kubeadm").stat().st_ino
    assert kubeadm.stat().st_mode & 0o7777 == 0o755
    assert _sha256sum_check(directory).returncode == 0
    assert bundle.write_bundle(build, directory).written == []
    kubeadm.write_text("#!/bin/sh\necho changed\n")  # in place, same size: found by its sha256
    kubeadm.chmod(0o700)
    image = directory / "images" / "coredns-v1.14.6.tar"
    image.chmod(0o600)  # right content, wrong mode: only the mode is set
    inode = image.stat().st_ino
    assert bundle.write_bundle(build, directory).written == ["bin/kubeadm"]
    assert image.stat().st_ino == inode and image.stat().st_mode & 0o7777 == 0o644
    assert kubeadm.stat().st_mode & 0o7777 == 0o755
    assert _sha256sum_check(directory).returncode == 0


def test_files_of_an_earlier_bundle_are_removed_and_other_files_left_alone(tmp_path):
    build = _fake_build(tmp_path)
    directory = tmp_path / "bundle"
    directory.mkdir()
    (directory / "README").write_text("mine\n")
    bundle.write_bundle(build, directory)
    smaller = PinBuild(build.kubernetes_version, build.kube_vip_tag,
                       {k: v for k, v in build.results.items() if k != "coredns"})  # fmt: skip
    bundle.write_bundle(smaller, directory)
    assert not (directory / "images" / "coredns-v1.14.6.tar").exists()
    assert (directory / "README").read_text() == "mine\n"
    assert "coredns" not in (directory / "SHA256SUMS").read_text()
    assert _sha256sum_check(directory).returncode == 0


def test_the_cache_files_are_hashed_once(tmp_path, monkeypatch):
    build = _fake_build(tmp_path)
    hashed = []
    real = bundle.sha256_file
    monkeypatch.setattr(bundle, "sha256_file", lambda path: hashed.append(path) or real(path))
    bundle.write_bundle(build, tmp_path / "one")
    assert len(hashed) == 7 and (tmp_path / "cache" / bundle.DIGESTS).exists()
    hashed.clear()
    bundle.write_bundle(build, tmp_path / "two")  # another bundle of the same cache: links, nothing hashed
    assert hashed == []
    assert _sha256sum_check(tmp_path / "two").returncode == 0


def test_image_file_names_and_a_missing_tag():
    assert bundle.image_file_name("registry.k8s.io/coredns/coredns:v1.14.6") == "coredns-v1.14.6.tar"
    assert bundle.image_file_name("registry.k8s.io/etcd:3.6.8-0") == "etcd-3.6.8-0.tar"
    assert bundle.image_file_name("ghcr.io/kube-vip/kube-vip:v1.2.3") == "kube-vip-v1.2.3.tar"
    with pytest.raises(BuildError, match="has no tag"):
        bundle.image_file_name("localhost:5000/pause")


def test_the_lab_bundle_lives_beside_the_components_cache(tmp_path):
    build = _fake_build(tmp_path)
    assert bundle.lab_bundle_dir(build) == tmp_path / "bundles" / "kubernetes-1.37.2-kube-vip-v1.2.3"

