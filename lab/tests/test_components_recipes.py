"""The components builder's pure parts: wrapper go.mod, ldflags, image layout, cache keys, pins.
No network, no build, no root."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from lab.components import images, pins, recipes

KUBERNETES_GOMOD = """\
// This is a generated file. Do not edit directly.
module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

require (
\tgithub.com/blang/semver/v4 v4.0.0
\tk8s.io/api v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go // the staging copy
\tgithub.com/example/other => github.com/example/other v1.2.3
)

replace k8s.io/kubectl => ./staging/src/k8s.io/kubectl
"""


def test_wrapper_gomod_replaces_every_staging_module_with_its_published_release():
    text = recipes.kubernetes_wrapper_gomod("1.36.3", KUBERNETES_GOMOD)
    assert "require k8s.io/kubernetes v1.36.3" in text
    replaces = [line.strip() for line in text.splitlines() if "=>" in line]
    assert replaces == [
        "k8s.io/api => k8s.io/api v0.36.3",
        "k8s.io/client-go => k8s.io/client-go v0.36.3",
        "k8s.io/kubectl => k8s.io/kubectl v0.36.3",
    ]
    assert "go 1.26.0" in text.splitlines() and "godebug default=go1.26" in text.splitlines()
    assert "semver" not in text  # requirements come from k8s.io/kubernetes itself


def test_wrapper_gomod_refuses_a_gomod_without_staging():
    with pytest.raises(recipes.RecipeError, match="no ./staging"):
        recipes.kubernetes_wrapper_gomod("1.36.3", "module k8s.io/kubernetes\n\ngo 1.26.0\n")


def test_kubernetes_ldflags_stamp_the_version_in_both_version_packages():
    flags = recipes.kubernetes_ldflags("v1.37.2")
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        assert f"-X {package}.gitVersion=v1.37.2" in flags
        assert f"-X {package}.gitMajor=1" in flags
        assert f"-X {package}.gitMinor=37" in flags
        assert f"-X {package}.gitTreeState=clean" in flags
    assert recipes.kubernetes_ldflags("1.37.2") == flags  # fixed build date: same input, same flags


@pytest.mark.parametrize("bad", ["1.36", "v1.36.x", "latest", ""])
def test_versions_must_be_releases(bad):
    with pytest.raises(recipes.RecipeError, match="not a release version"):
        recipes.kubernetes_ldflags(bad)


@pytest.mark.parametrize(("tag", "source"), [("3.6.8-0", "v3.6.8"), ("3.7.0-0", "v3.7.0"), ("3.5.21", "v3.5.21")])
def test_etcd_source_version_from_kubeadm_image_tag(tag, source):
    assert recipes.etcd_source_version(tag) == source
    assert f"go.etcd.io/etcd/server/v3 {source}" in recipes.etcd_wrapper_gomod(source)


def test_etcd_image_tag_must_look_like_one():
    with pytest.raises(recipes.RecipeError, match="etcd image tag"):
        recipes.etcd_source_version("latest")


KUBE_VIP_MAKEFILE = """\
TARGET := kube-vip
VERSION := v1.2.3
BUILD := `git rev-parse HEAD`
LDFLAGS=-ldflags "-s -w -X=main.Version=$(VERSION) -X=main.Build=$(BUILD) -extldflags -static"
"""


def test_kube_vip_ldflags_are_the_makefiles_with_version_and_build_filled_in():
    assert recipes.kube_vip_ldflags(KUBE_VIP_MAKEFILE, "v1.2.3", "src-abc") == (
        "-s -w -X=main.Version=v1.2.3 -X=main.Build=src-abc"
    )


def test_kube_vip_ldflags_refuse_a_makefile_without_them():
    with pytest.raises(recipes.RecipeError, match="no LDFLAGS"):
        recipes.kube_vip_ldflags("all:\n\tgo build\n", "v1.2.3", "x")


@pytest.mark.parametrize(("tag", "needed"), [("v0.4.0", True), ("v0.5.12", True), ("v0.6.4", False), ("v1.2.3", False)])
def test_old_kube_vip_tags_need_checklinkname(tag, needed):
    assert recipes.kube_vip_needs_checklinkname(tag) is needed


def test_image_list_versions_reads_kubeadms_list():
    listed = [
        "registry.k8s.io/kube-apiserver:v1.36.3",
        "registry.k8s.io/coredns/coredns:v1.14.2",
        "registry.k8s.io/pause:3.10.2",
        "registry.k8s.io/etcd:3.6.8-0",
        "",
    ]
    assert recipes.image_list_versions(listed) == {
        "kube-apiserver": "v1.36.3",
        "coredns": "v1.14.2",
        "pause": "3.10.2",
        "etcd": "3.6.8-0",
    }
    with pytest.raises(recipes.RecipeError):
        recipes.image_list_versions(["pause"])


def test_cache_key_changes_with_what_and_how_it_was_built():
    base = recipes.cache_key("etcd", "3.6.8-0", "go1.26.8", gomod="x")
    assert base == recipes.cache_key("etcd", "3.6.8-0", "go1.26.8", gomod="x")
    others = {
        recipes.cache_key("etcd", "3.6.9-0", "go1.26.8", gomod="x"),
        recipes.cache_key("etcd", "3.6.8-0", "go1.26.9", gomod="x"),
        recipes.cache_key("etcd", "3.6.8-0", "go1.26.8", gomod="y"),
        recipes.cache_key("coredns", "3.6.8-0", "go1.26.8", gomod="x"),
    }
    assert base not in others and len(others) == 4


def _archive(tmp_path, spec):
    path = tmp_path / "image.tar"
    image_id = images.write_image(spec, path)
    with tarfile.open(path) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        config_bytes = outer.extractfile(manifest[0]["Config"]).read()
        layer_bytes = outer.extractfile(manifest[0]["Layers"][0]).read()
    return image_id, manifest, config_bytes, layer_bytes


def test_image_archive_layout_is_what_ctr_import_takes(tmp_path):
    binary = tmp_path / "tool"
    binary.write_bytes(b"\x7fELF fake")
    binary.chmod(0o755)
    spec = images.ImageSpec(("registry.k8s.io/pause:3.10.2",), {"pause": str(binary)}, ("/pause",), {"bin/p": "/pause"})
    image_id, manifest, config_bytes, layer_bytes = _archive(tmp_path, spec)
    assert manifest[0]["RepoTags"] == ["registry.k8s.io/pause:3.10.2"]
    assert manifest[0]["Config"] == f"{image_id}.json"
    assert hashlib.sha256(config_bytes).hexdigest() == image_id
    config = json.loads(config_bytes)
    layer_digest = hashlib.sha256(layer_bytes).hexdigest()
    assert config["rootfs"] == {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]}
    assert manifest[0]["Layers"] == [f"{layer_digest}/layer.tar"]
    assert config["config"]["Entrypoint"] == ["/pause"]
    assert (config["architecture"], config["os"]) == ("amd64", "linux")
    with tarfile.open(fileobj=io.BytesIO(layer_bytes)) as layer:
        members = {m.name: m for m in layer.getmembers()}
    assert members["pause"].mode == 0o755 and members["pause"].size == len(b"\x7fELF fake")
    assert members["bin"].isdir() and members["bin/p"].issym() and members["bin/p"].linkname == "/pause"
    assert members["tmp"].mode == 0o1777
    assert "etc/passwd" in members
    assert all(m.mtime == 0 and m.uid == 0 for m in members.values())


def test_image_archive_is_deterministic(tmp_path):
    binary = tmp_path / "tool"
    binary.write_bytes(b"same")
    spec = images.ImageSpec(("example.org/a:1",), {"usr/local/bin/a": str(binary)}, ("/usr/local/bin/a",))
    first = images.write_image(spec, tmp_path / "one.tar")
    second = images.write_image(spec, tmp_path / "two.tar")
    assert first == second
    assert (tmp_path / "one.tar").read_bytes() == (tmp_path / "two.tar").read_bytes()
    assert images.read_image_references(tmp_path / "one.tar") == ["example.org/a:1"]


LDD = """\
\tlinux-vdso.so.1 (0x00007ffd8a5f2000)
\tlibxtables.so.12 => /lib/x86_64-linux-gnu/libxtables.so.12 (0x00007f1c2c5a0000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f1c2c3bf000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f1c2c5f6000)
\tlibmissing.so => not found
"""


def test_parse_ldd_lists_the_libraries_and_the_loader():
    assert images.parse_ldd(LDD) == [
        "/lib/x86_64-linux-gnu/libxtables.so.12",
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/ld-linux-x86-64.so.2",
    ]


def _pins_file(tmp_path, **changes):
    data = json.loads(pins.PINS_FILE.read_text())
    data.update(changes)
    path = tmp_path / "pins.json"
    path.write_text(json.dumps(data))
    return path


def test_pins_file_of_the_repository_loads_and_names_a_default():
    loaded = pins.load()
    assert loaded.kubernetes_pin().version == loaded.default_kubernetes
    assert {"1.36", "1.37"} <= set(loaded.kubernetes)
    assert loaded.kube_vip_tag() in loaded.kube_vip


def test_pins_take_a_minor_or_its_exact_patch_and_refuse_others(tmp_path):
    loaded = pins.load()
    assert loaded.kubernetes_pin("1.36").version == loaded.kubernetes["1.36"].version
    assert loaded.kubernetes_pin("v" + loaded.kubernetes["1.36"].version).minor == "1.36"
    with pytest.raises(pins.PinError, match=r"Kubernetes 1\.36\.0 is not pinned; the lab can build"):
        loaded.kubernetes_pin("1.36.0")
    with pytest.raises(pins.PinError, match="kube-vip v9.9.9 is not pinned"):
        loaded.kube_vip_tag("v9.9.9")
    assert loaded.kube_vip_tag(loaded.default_kube_vip.lstrip("v")) == loaded.default_kube_vip


def test_pins_file_with_a_pin_of_the_wrong_minor_is_refused(tmp_path):
    path = _pins_file(tmp_path, kubernetes={"1.36": {"version": "1.37.2", "images": None}})
    with pytest.raises(pins.PinError, match="a release of another minor"):
        pins.load(path)


def test_refresh_rewrites_only_the_images_of_one_minor():
    text = pins.PINS_FILE.read_text()
    new = pins.with_images(text, "1.37", {"etcd": "3.7.0-0", "coredns": "v1.14.6", "pause": "3.10.2", "kube-proxy": "x"})
    data, old = json.loads(new), json.loads(text)
    assert data["kubernetes"]["1.37"]["images"] == {"etcd": "3.7.0-0", "coredns": "v1.14.6", "pause": "3.10.2"}
    data["kubernetes"]["1.37"]["images"] = old["kubernetes"]["1.37"]["images"]
    assert data == old


def test_a_pin_for_kubeadm_checks_only_is_refused_for_nodes_and_taken_for_kubeadm(tmp_path):
    path = _pins_file(tmp_path, default_kubernetes="1.36.3", kubernetes={
        "1.36": {"version": "1.36.3", "images": None},
        "1.31": {"version": "1.31.14", "images": None, "lab": False},
    })  # fmt: skip
    loaded = pins.load(path)
    assert loaded.lab_versions == ["1.36.3"]
    assert loaded.kubernetes_pin("1.31", for_nodes=False).version == "1.31.14"
    with pytest.raises(pins.PinError, match=r"1\.31\.14 is pinned for kubeadm's config checks only; the lab's nodes run 1\.36\.3"):
        loaded.kubernetes_pin("1.31")
    bad = _pins_file(tmp_path, default_kubernetes="1.36.3",
                     kubernetes={"1.36": {"version": "1.36.3", "images": None, "lab": "no"}})
    with pytest.raises(pins.PinError, match="lab of 1.36 must be true or false"):
        pins.load(bad)
