# -*- coding: utf-8 -*-
"""_bundle: bundle.json's validation, the cluster's images, SHA256SUMS, what a node lacks, a new bundle's files."""

import copy
import json
import os
import re
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "fixtures"))

import bundle_kit as kit  # noqa: E402

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _bundle as b  # noqa: E402

# The bundle.json the lab wrote for 1.36.3 (two entries of eleven), as the format fixes it.
LAB_MANIFEST = """{
  "format": 1,
  "kubernetes_version": "1.36.3",
  "kube_vip_version": "v1.2.3",
  "architecture": "amd64",
  "files": [
    {
      "path": "bin/kubeadm",
      "kind": "binary",
      "name": "kubeadm",
      "sha256": "04d808a62c5ba5d783fea0e473efba7dc5586baa270ce0c03ea58aec69e4efd0"
    },
    {
      "path": "images/pause-3.10.2.tar",
      "kind": "image",
      "references": [
        "registry.k8s.io/pause:3.10.2"
      ],
      "sha256": "591abcb061eeedd1a0b724166b322e58cba1b85825b32cccd86e827358e3a7b9"
    }
  ]
}"""
LAB_SUMS = ("04d808a62c5ba5d783fea0e473efba7dc5586baa270ce0c03ea58aec69e4efd0  bin/kubeadm\n"
            "591abcb061eeedd1a0b724166b322e58cba1b85825b32cccd86e827358e3a7b9  images/pause-3.10.2.tar\n")


def good():
    return kit.manifest()


def problems_of(text):
    with pytest.raises(b.BundleError) as raised:
        b.parse_manifest(text)
    return raised.value.problems


def test_the_lab_bundle_json_parses_and_its_sha256sums_is_what_render_writes():
    manifest = b.parse_manifest(LAB_MANIFEST)
    assert [entry["path"] for entry in manifest["files"]] == ["bin/kubeadm", "images/pause-3.10.2.tar"]
    assert b.render_sha256sums(manifest) == LAB_SUMS
    assert b.sha256sums_problems(LAB_SUMS, manifest) == []
    assert json.loads(b.render_manifest(manifest)) == json.loads(LAB_MANIFEST)


def mutate(change):
    data = good()
    change(data)
    return json.dumps(data)


def entry_of(data, path):
    return next(entry for entry in data["files"] if entry["path"] == path)


PAUSE = "images/pause-3.10.2.tar"
SHAPE_CASES = [
    ("not-json", "{format: 1", r"bundle.json is not valid JSON"),
    ("a-list", "[]", r"bundle.json is not a JSON object"),
    ("format-2", mutate(lambda d: d.update(format=2)), r"bundle.json has format 2, but this collection reads format 1"),
    ("format-true", mutate(lambda d: d.update(format=True)), r"has format True"),
    ("no-version", mutate(lambda d: d.pop("kubernetes_version")), r"bundle.json has no kubernetes_version"),
    ("no-architecture", mutate(lambda d: d.update(architecture="")), r"bundle.json has no architecture"),
    ("no-files", mutate(lambda d: d.update(files=[])), r"bundle.json lists no files"),
    ("absolute-path", mutate(lambda d: entry_of(d, PAUSE).update(path="/srv/pause.tar")),
     r"the file /srv/pause.tar has the absolute path /srv/pause.tar: paths in bundle.json are relative"),
    ("parent-path", mutate(lambda d: entry_of(d, PAUSE).update(path="../pause.tar")),
     r"the file ../pause.tar has the path ../pause.tar, which is not a plain path inside the bundle"),
    ("dot-path", mutate(lambda d: entry_of(d, PAUSE).update(path="images/./pause.tar")),
     r"not a plain path inside the bundle"),
    ("index-as-file", mutate(lambda d: entry_of(d, PAUSE).update(path="SHA256SUMS")), r"the bundle's own index"),
    ("kind", mutate(lambda d: entry_of(d, PAUSE).update(kind="tarball")), r"has the kind 'tarball': use binary or image"),
    ("sha-upper", mutate(lambda d: entry_of(d, PAUSE).update(sha256=entry_of(d, PAUSE)["sha256"].upper())),
     r"the file images/pause-3.10.2.tar has no sha256"),
    ("binary-name", mutate(lambda d: entry_of(d, "bin/kubelet").pop("name")), r"the file bin/kubelet has no name"),
    ("no-references", mutate(lambda d: entry_of(d, PAUSE).update(references=[])),
     r"the file images/pause-3.10.2.tar has no references"),
    ("not-tar", mutate(lambda d: entry_of(d, PAUSE).update(path="images/pause.tgz")), r"does not end in .tar"),
    ("twice", mutate(lambda d: d["files"].append(copy.deepcopy(entry_of(d, PAUSE)))),
     r"bundle.json lists images/pause-3.10.2.tar twice"),
    ("two-kubelets", mutate(lambda d: d["files"].append(dict(entry_of(d, "bin/kubelet"), path="bin/kubelet2"))),
     r"bundle.json lists two binaries named kubelet"),
    ("same-archive-name", mutate(lambda d: d["files"].append(dict(entry_of(d, PAUSE), path="images/x/pause-3.10.2.tar"))),
     r"two image archives named pause-3.10.2.tar \(images/pause-3.10.2.tar and images/x/pause-3.10.2.tar"),
]


@pytest.mark.parametrize("text, expected", [case[1:] for case in SHAPE_CASES], ids=[case[0] for case in SHAPE_CASES])
def test_bundle_json_of_the_wrong_shape_is_refused_with_a_sentence_naming_the_file(text, expected):
    problems = problems_of(text)
    assert any(re.search(expected, problem) for problem in problems), problems
    assert all(problem.endswith(".") for problem in problems), problems


def test_the_good_bundle_can_install_the_cluster():
    assert b.check_manifest(b.parse_manifest(json.dumps(good())), "1.37.2") == []
    assert b.check_manifest(good(), "v1.37.2") == []  # a leading v is accepted, as node_prep accepts it


def without(reference):
    return [image for image in kit.IMAGES if image != reference]


@pytest.mark.parametrize("images, expected", [
    (without("registry.k8s.io/kube-proxy:v1.37.2"),
     "The bundle holds no image registry.k8s.io/kube-proxy:v1.37.2, which kubeadm 1.37.2 runs: rebuild the bundle "
     "with playbooks/bundle.yml (docs/air-gapped.md)."),
    (without("registry.k8s.io/etcd:3.7.0-0"),
     "The bundle holds no etcd image (any tag of registry.k8s.io/etcd), which kubeadm 1.37.2 runs: rebuild the "
     "bundle with playbooks/bundle.yml (docs/air-gapped.md)."),
    (without("registry.k8s.io/coredns/coredns:v1.14.6"),
     "The bundle holds no coredns image (any tag of registry.k8s.io/coredns/coredns), which kubeadm 1.37.2 runs: "
     "rebuild the bundle with playbooks/bundle.yml (docs/air-gapped.md)."),
    (without("registry.k8s.io/pause:3.10.2"),
     "The bundle holds no image registry.k8s.io/pause:3.10.2, the pause image containerd's configuration names "
     "(node_prep_pause_image, or that of Kubernetes 1.37): rebuild the bundle with playbooks/bundle.yml "
     "(docs/air-gapped.md)."),
    (without(kit.KUBE_VIP),
     "The bundle holds no image ghcr.io/kube-vip/kube-vip:v1.2.3, the image the kube-vip manifest names "
     "(kube_vip_version v1.2.3, kube_vip_image unset): rebuild the bundle with playbooks/bundle.yml "
     "(docs/air-gapped.md)."),
])
def test_each_image_the_cluster_runs_must_be_in_the_bundle(images, expected):
    assert b.check_manifest(kit.manifest(images), "1.37.2") == [expected]


def test_etcd_and_coredns_of_another_tag_count_since_kubeadm_chooses_them_per_patch_release():
    images = [image.replace("3.7.0-0", "3.6.99-0").replace("v1.14.6", "v1.99.0") for image in kit.IMAGES]
    assert b.check_manifest(kit.manifest(images), "1.37.2") == []


def test_a_missing_binary_is_named():
    data = good()
    data["files"] = [entry for entry in data["files"] if entry.get("name") != "kubelet"]
    assert b.check_manifest(data, "1.37.2") == [
        "The bundle has no kubelet binary (bin/kubelet, kind binary, name kubelet in bundle.json): rebuild the "
        "bundle with playbooks/bundle.yml (docs/air-gapped.md)."]


def test_another_kubernetes_version_is_one_sentence_and_kube_vip_is_still_checked():
    problems = b.check_manifest(kit.manifest(without(kit.KUBE_VIP)), "1.36.3")
    assert problems[0] == ("The bundle holds Kubernetes 1.37.2, but vipadm_kubernetes_version is 1.36.3: build a "
                           "bundle for 1.36.3 (playbooks/bundle.yml), or set vipadm_kubernetes_version to 1.37.2.")
    assert len(problems) == 2 and "ghcr.io/kube-vip/kube-vip:v1.2.3" in problems[1]


def test_an_unsupported_version_or_kube_vip_setting_is_refused_as_node_prep_and_the_kube_vip_role_refuse_it():
    with pytest.raises(b.BundleError, match=r"Kubernetes 1.28.1 is not supported by node_prep"):
        b.check_manifest(good(), "1.28.1")
    with pytest.raises(b.BundleError, match=r"kube_vip_version/kube_vip_image: kube-vip v9.0.0 is newer"):
        b.check_manifest(good(), "1.37.2", kube_vip_version="v9.0.0")


def test_another_image_repository_a_pause_override_and_a_kube_vip_mirror_are_the_references_checked():
    repository = "mirror.example:5000/k8s"
    images = [image.replace("registry.k8s.io/coredns/coredns", "registry.k8s.io/coredns")
              .replace("registry.k8s.io", repository) for image in kit.KUBEADM_IMAGES]
    images += ["mirror.example:5000/k8s/pause:3.9", "mirror.example:5000/kube-vip:v0.8.9"]
    data = kit.manifest(images)
    # kubeadm names CoreDNS <repository>/coredns outside registry.k8s.io; kube_vip_image untagged gets the version
    assert b.check_manifest(data, "1.37.2", image_repository=repository, pause="mirror.example:5000/k8s/pause:3.9",
                            kube_vip_version="v0.8.9", kube_vip_image="mirror.example:5000/kube-vip") == []
    wanted = {item["name"]: item.get("reference", item.get("repository"))
              for item in b.required_images("1.37.2", repository)}
    assert wanted["coredns"] == "mirror.example:5000/k8s/coredns"
    assert wanted["pause"] == "mirror.example:5000/k8s/pause:3.10.2"
    assert wanted["kube-apiserver"] == "mirror.example:5000/k8s/kube-apiserver:v1.37.2"


def test_the_kube_vip_image_is_the_one_its_manifest_names():
    # v0.6.1 was built as v0.6.0; a Docker Hub mirror is named as containerd names it
    assert b.required_images("1.37.2", kube_vip_version="v0.6.1")[-1]["reference"] == "ghcr.io/kube-vip/kube-vip:v0.6.0"
    data = kit.manifest(without(kit.KUBE_VIP) + ["plndr/kube-vip:v1.2.3"])
    assert b.check_manifest(data, "1.37.2", kube_vip_image="docker.io/plndr/kube-vip") == []


@pytest.mark.parametrize("reference, normalized", [
    ("registry.k8s.io/pause:3.10.2", "registry.k8s.io/pause:3.10.2"),
    ("nginx", "docker.io/library/nginx:latest"),
    ("nginx:1.27", "docker.io/library/nginx:1.27"),
    ("index.docker.io/library/nginx:1.27", "docker.io/library/nginx:1.27"),
    ("calico/node:v3.29.1", "docker.io/calico/node:v3.29.1"),
    ("localhost/x:1", "localhost/x:1"),
    ("mirror.example:5000/k8s/etcd:3.7.0-0", "mirror.example:5000/k8s/etcd:3.7.0-0"),
    ("mirror.example:5000/k8s/etcd", "mirror.example:5000/k8s/etcd:latest"),
    ("ghcr.io/a/b@sha256:" + "0" * 64, "ghcr.io/a/b@sha256:" + "0" * 64),
])
def test_references_are_compared_as_containerd_names_them(reference, normalized):
    assert b.normalize_reference(reference) == normalized


@pytest.mark.parametrize("reference, name", [
    ("registry.k8s.io/etcd:3.7.0-0", "etcd-3.7.0-0.tar"),
    ("registry.k8s.io/coredns/coredns:v1.14.6", "coredns-v1.14.6.tar"),
    ("ghcr.io/kube-vip/kube-vip:v1.2.3", "kube-vip-v1.2.3.tar"),
    ("mirror.example:5000/pause", "pause-latest.tar"),
])
def test_archive_names_are_name_dash_tag(reference, name):
    assert b.image_file_name(reference) == name


def test_sha256sums_must_say_what_bundle_json_says():
    data = good()
    sums = b.render_sha256sums(data)
    assert sums.splitlines()[0] == "%s  bin/kubeadm" % data["files"][0]["sha256"]
    assert b.sha256sums_problems(sums, data) == []
    assert b.sha256sums_problems(sums.replace("  bin/", " *bin/"), data) == []  # sha256sum's binary marker
    assert b.sha256sums_problems(None, data) == [
        "The bundle has no SHA256SUMS: rebuild the bundle with playbooks/bundle.yml (docs/air-gapped.md)."]
    lines = sums.splitlines()
    dropped = "\n".join(lines[1:]) + "\n"
    assert b.sha256sums_problems(dropped, data) == [
        "SHA256SUMS does not list bin/kubeadm, which bundle.json lists: rebuild the bundle with playbooks/bundle.yml "
        "(docs/air-gapped.md)."]
    other = sums.replace(data["files"][0]["sha256"], "f" * 64)
    assert b.sha256sums_problems(other, data)[0].startswith("SHA256SUMS and bundle.json give bin/kubeadm different")
    extra = sums + "%s  images/old.tar\n" % ("a" * 64)
    assert b.sha256sums_problems(extra, data)[0].startswith("SHA256SUMS lists images/old.tar, which bundle.json does not")
    assert b.sha256sums_problems("garbage\n", data)[0].startswith('SHA256SUMS line 1 is not "<sha256>  <path>"')


def test_a_node_of_another_architecture_a_pause_outside_the_bundle_or_no_containerd_is_refused():
    data = good()
    assert b.node_problems(data, "registry.k8s.io/pause:3.10.2", "x86_64") == []
    assert b.node_problems(data, "registry.k8s.io/pause:3.10.2", "aarch64") == [
        "This node is aarch64 (arm64), but the bundle holds binaries and images for amd64: build a bundle for arm64 "
        "(playbooks/bundle.yml with bundle_architecture=arm64)."]
    assert b.node_problems(data, "registry.k8s.io/pause:3.9", "x86_64") == [
        "The bundle holds no image registry.k8s.io/pause:3.9, the pause image containerd's configuration names on "
        "this node: set node_prep_pause_image to a pause image the bundle holds, or rebuild the bundle with "
        "playbooks/bundle.yml (docs/air-gapped.md)."]
    problems = b.node_problems(data, "registry.k8s.io/pause:3.10.2", "x86_64", containerd_found=False)
    assert len(problems) == 1 and problems[0].startswith("This node has no containerd, and node_prep installs none")


def installed_as_bundle(data, **changes):
    installed = {entry["name"]: {"sha256": entry["sha256"], "mode": 0o755} for entry in b.binaries(data)}
    for name, state in changes.items():
        if state is None:
            installed.pop(name)
        else:
            installed[name] = dict(installed[name], **state)
    return installed


def test_a_node_with_everything_lacks_nothing():
    data = good()
    assert b.node_plan(data, installed_as_bundle(data), kit.IMAGES) == {"binaries": [], "images": []}


def test_binaries_absent_changed_or_not_executable_are_copied():
    data = good()
    plan = b.node_plan(data, installed_as_bundle(data, kubeadm=None, kubelet={"sha256": "0" * 64},
                                                 kubectl={"mode": 0o644}), kit.IMAGES)
    assert [entry["name"] for entry in plan["binaries"]] == ["kubeadm", "kubelet", "kubectl"]
    assert plan["images"] == []


def test_images_containerd_lists_under_their_normalized_names_are_not_imported_again():
    data = kit.manifest(kit.IMAGES + ["nginx:1.27"])
    entry_of(data, "images/nginx-1.27.tar")["references"].append("docker.io/library/nginx:stable")
    listed = [image for image in kit.IMAGES if "pause" not in image] + ["docker.io/library/nginx:1.27", "sha256:abc"]
    plan = b.node_plan(data, installed_as_bundle(data), listed)
    assert [(entry["path"], entry["missing"]) for entry in plan["images"]] == [
        ("images/pause-3.10.2.tar", ["registry.k8s.io/pause:3.10.2"]),
        ("images/nginx-1.27.tar", ["docker.io/library/nginx:stable"]),
    ]


def test_without_an_answer_from_containerd_every_image_is_lacking():
    data = good()
    plan = b.node_plan(data, installed_as_bundle(data), None)
    assert len(plan["images"]) == len(kit.IMAGES)


def test_a_new_bundle_lists_each_image_once_under_its_archive_name():
    entries = b.wanted_images(kit.IMAGES + ["nginx:1.27", "docker.io/library/nginx:1.27"])
    assert entries[0] == {"path": "images/kube-apiserver-v1.37.2.tar", "kind": "image",
                          "references": ["registry.k8s.io/kube-apiserver:v1.37.2"]}
    assert [entry["path"] for entry in entries][-2:] == ["images/kube-vip-v1.2.3.tar", "images/nginx-1.27.tar"]
    with pytest.raises(b.BundleError) as raised:
        b.wanted_images(["ghcr.io/a/b@sha256:" + "0" * 64, "a.example/x/etcd:1", "b.example/etcd:1"])
    assert raised.value.problems == [
        "The image ghcr.io/a/b@sha256:%s is a digest reference: give it with a tag, the name containerd lists after "
        "the import." % ("0" * 64),
        "The images a.example/x/etcd:1 and b.example/etcd:1 would both be stored as images/etcd-1.tar: leave one of "
        "them out."]


def test_an_archive_an_earlier_build_left_with_its_checksum_is_not_fetched_again():
    wanted = b.wanted_images(["registry.k8s.io/pause:3.10.2", "registry.k8s.io/etcd:3.7.0-0"])
    previous = {"files": [dict(wanted[0], sha256="a" * 64), dict(wanted[1], sha256="b" * 64)]}
    both = {"images/pause-3.10.2.tar": "a" * 64, "images/etcd-3.7.0-0.tar": "b" * 64}
    assert b.images_to_fetch(wanted, None, both) == wanted
    assert b.images_to_fetch(wanted, previous, both) == []
    damaged = dict(both, **{"images/etcd-3.7.0-0.tar": "c" * 64})
    assert b.images_to_fetch(wanted, previous, damaged) == [wanted[1]]
    assert b.images_to_fetch(wanted, previous, {"images/pause-3.10.2.tar": "a" * 64}) == [wanted[1]]
    renamed = {"files": [dict(wanted[0], sha256="a" * 64, references=["mirror.example/pause:3.10.2"]),
                         previous["files"][1]]}
    assert b.images_to_fetch(wanted, renamed, both) == [wanted[0]]


@pytest.mark.parametrize("machine, architecture", [("x86_64", "amd64"), ("aarch64", "arm64"), ("armv7l", "arm"),
                                                   ("ppc64le", "ppc64le"), ("mips", "mips")])
def test_machine_names_become_the_architectures_of_the_downloads(machine, architecture):
    assert b.go_architecture(machine) == architecture


def test_a_built_manifest_is_what_the_format_says():
    data = b.build_manifest("v1.37.2", "v1.2.3", "arm64", [{"path": "bin/kubeadm", "kind": "binary",
                                                            "name": "kubeadm", "sha256": "a" * 64}])
    assert data == {"format": 1, "kubernetes_version": "1.37.2", "kube_vip_version": "v1.2.3",
                    "architecture": "arm64",
                    "files": [{"path": "bin/kubeadm", "kind": "binary", "name": "kubeadm", "sha256": "a" * 64}]}
    assert b.render_manifest(data).endswith("}\n") and json.loads(b.render_manifest(data)) == data


def test_an_extra_binary_of_the_bundle_is_installed_too():
    data = good()
    data["files"].insert(3, {"path": "bin/crictl", "kind": "binary", "name": "crictl", "sha256": "c" * 64})
    data = b.parse_manifest(json.dumps(data))
    assert b.check_manifest(data, "1.37.2") == []
    plan = b.node_plan(data, installed_as_bundle(good()), kit.IMAGES)
    assert [entry["name"] for entry in plan["binaries"]] == ["crictl"]
