# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Air-gapped bundles: pure functions, no file or host access (file access is in ``_bundle_files``).

A bundle is a directory on the controller::

    bundle.json   format 1: kubernetes_version, kube_vip_version, architecture, files
    SHA256SUMS    "<hex>  <path>" per file of bundle.json (``sha256sum -c SHA256SUMS``)
    bin/kubeadm bin/kubelet bin/kubectl
    images/<name>-<tag>.tar   archives ``ctr -n k8s.io images import`` accepts

``parse_manifest`` reads and validates bundle.json on its own; ``check_manifest`` checks it against the
cluster (Kubernetes version, the three binaries, every image kubeadm and kube-vip will run);
``node_problems`` against one node (architecture, pause image, containerd present); ``node_plan`` says
what a node lacks (binaries to copy, archives to import); ``build_manifest``, ``render_manifest`` and
``render_sha256sums`` write a bundle. Every problem is one sentence naming the file or image reference
and what to do.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import posixpath
import re

from ansible_collections.vipadm.kubeadm.plugins.module_utils._kube_vip import (
    DEFAULT_VERSION as DEFAULT_KUBE_VIP_VERSION,
    KubeVipOptionError,
    manifest_image,
)
from ansible_collections.vipadm.kubeadm.plugins.module_utils._node_prep import (
    DEFAULT_IMAGE_REPOSITORY,
    NodePrepError,
    parse_kubernetes_version,
    pause_image,
)

FORMAT = 1
MANIFEST = "bundle.json"
SHA256SUMS = "SHA256SUMS"
BINARIES = ("kubeadm", "kubelet", "kubectl")
KINDS = ("binary", "image")
BINARY_MODE = 0o755
CONTAINERD_NAMESPACE = "k8s.io"
# Go's GOARCH of the machine names `uname -m` prints, as the release downloads are named.
GO_ARCHITECTURES = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv8l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}
# What a bundle is rebuilt with, for the sentences.
REBUILD = "rebuild the bundle with playbooks/bundle.yml (docs/air-gapped.md)"

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_SUMS_LINE_RE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")
_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")


class BundleError(Exception):
    """A bundle that cannot be used: ``problems`` holds one sentence per problem; the message is ``context``
    (such as "The bundle /srv/b cannot be used: ") followed by the sentences."""

    def __init__(self, problems, context=""):
        self.problems = list(problems)
        super(BundleError, self).__init__(context + " ".join(self.problems))


# The cluster settings a bundle is checked against: the argument spec of the bundle modules
# (doc fragment vipadm.kubeadm.bundle), and the keywords of check_manifest and required_images they become.
CLUSTER_ARGUMENT_SPEC = dict(
    kubernetes_version=dict(type="str", required=True),
    image_repository=dict(type="str", default=DEFAULT_IMAGE_REPOSITORY),
    pause_image=dict(type="str"),
    kube_vip_version=dict(type="str", default=DEFAULT_KUBE_VIP_VERSION),
    kube_vip_image=dict(type="str"),
)


def cluster_settings(params):
    """A module's parameters -> the keywords of check_manifest and required_images (kubernetes_version aside)."""
    return dict(image_repository=params["image_repository"], pause=params["pause_image"],
                kube_vip_version=params["kube_vip_version"], kube_vip_image=params["kube_vip_image"])


def call_or_fail(module, function, *args, **kwargs):
    """``function(*args, **kwargs)`` for a module's main(); a BundleError fails the module with its message and
    its sentences as ``problems``."""
    try:
        return function(*args, **kwargs)
    except BundleError as error:
        module.fail_json(msg=str(error), problems=error.problems)


# ---- image references -----------------------------------------------------------------------------


def normalize_reference(reference):
    """An image reference as containerd and the kubelet name it: registry, path, then tag or digest.

    ``nginx`` -> ``docker.io/library/nginx:latest``; ``index.docker.io/x/y:1`` -> ``docker.io/x/y:1``;
    references with a registry (a first component with a dot or colon, or ``localhost``) are kept.
    """
    name = str(reference).strip()
    digest = ""
    if "@" in name:
        name, digest = name.split("@", 1)
    tag = ""
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = "docker.io", name
    if domain == "index.docker.io":
        domain = "docker.io"
    if domain == "docker.io" and "/" not in path:
        path = "library/" + path
    normalized = "%s/%s" % (domain, path)
    if tag:
        normalized += ":" + tag
    if digest:
        normalized += "@" + digest
    if not tag and not digest:
        normalized += ":latest"
    return normalized


def split_reference(reference):
    """``registry.k8s.io/etcd:3.6.8-0`` -> (``registry.k8s.io/etcd``, ``3.6.8-0``), normalized first."""
    normalized = normalize_reference(reference)
    name = normalized.split("@", 1)[0]
    repository, _sep, tag = name.rpartition(":")
    return repository, tag


def image_file_name(reference):
    """The archive name of a bundle image: ``<last path component>-<tag>.tar`` (``etcd-3.6.8-0.tar``)."""
    repository, tag = split_reference(reference)
    return "%s-%s.tar" % (repository.rsplit("/", 1)[-1], tag)


def go_architecture(machine):
    """``uname -m`` (``x86_64``) -> the architecture a bundle names (``amd64``); unknown names unchanged."""
    return GO_ARCHITECTURES.get(str(machine), str(machine))


# ---- bundle.json ------------------------------------------------------------------------------------


def _check_path(path, where):
    """Sentences for a path that is not a plain relative path inside the bundle."""
    if not isinstance(path, str) or not path:
        return ["%s has no path: give each file its path relative to the bundle directory, or %s." % (where, REBUILD)]
    if path.startswith("/"):
        return ["%s has the absolute path %s: paths in bundle.json are relative to the bundle directory "
                "(bin/kubeadm, images/<name>-<tag>.tar); %s." % (where, path, REBUILD)]
    if "\\" in path or posixpath.normpath(path) != path or path.split("/")[0] == "..":
        return ["%s has the path %s, which is not a plain path inside the bundle (no '..', '.', '//' or "
                "trailing '/'): %s." % (where, path, REBUILD)]
    if path in (MANIFEST, SHA256SUMS):
        return ["%s names %s, which is the bundle's own index, not a file to install: %s." % (where, path, REBUILD)]
    return []


def _check_entry(index, entry):
    """Sentences for one element of bundle.json's ``files``."""
    if not isinstance(entry, dict):
        return ["bundle.json: files[%d] is not an object: %s." % (index, REBUILD)]
    path = entry.get("path")
    where = "bundle.json: the file %s" % path if isinstance(path, str) and path else "bundle.json: files[%d]" % index
    problems = _check_path(path, where)
    kind = entry.get("kind")
    if kind not in KINDS:
        problems.append("%s has the kind %r: use binary or image." % (where, kind))
    sha256 = entry.get("sha256")
    if not isinstance(sha256, str) or not _SHA256_RE.match(sha256):
        problems.append("%s has no sha256 (64 lowercase hexadecimal digits): %s." % (where, REBUILD))
    if kind == "binary":
        name = entry.get("name")
        if not isinstance(name, str) or not _FILE_NAME_RE.match(name):
            problems.append("%s has no name (the command it installs, such as kubelet): %s." % (where, REBUILD))
    if kind == "image":
        references = entry.get("references")
        if (not isinstance(references, list) or not references
                or not all(isinstance(item, str) and item.strip() for item in references)):
            problems.append("%s has no references (the image names in the archive, such as "
                            "registry.k8s.io/pause:3.10.2): %s." % (where, REBUILD))
        elif isinstance(path, str) and not path.endswith(".tar"):
            problems.append("%s is an image archive whose name does not end in .tar: %s." % (where, REBUILD))
    return problems


def _check_unique(files):
    problems = []
    paths, names, archives = set(), set(), {}
    for entry in files:
        path = entry["path"]
        if path in paths:
            problems.append("bundle.json lists %s twice: %s." % (path, REBUILD))
        paths.add(path)
        if entry["kind"] == "binary":
            if entry["name"] in names:
                problems.append("bundle.json lists two binaries named %s: %s." % (entry["name"], REBUILD))
            names.add(entry["name"])
            continue
        archive = posixpath.basename(path)
        if archives.setdefault(archive, path) != path:
            problems.append("bundle.json lists two image archives named %s (%s and %s; each node keeps them side by "
                            "side in one directory): %s." % (
                                archive, archives[archive], path, REBUILD))
    return problems


def parse_manifest(text):
    """bundle.json's text -> the manifest (a dict), or BundleError with a sentence per problem.

    Checks the shape only: format 1, the three version/architecture fields, and each file's path (relative,
    inside the bundle), kind, sha256, binary name or image references. ``check_manifest`` checks the rest.
    """
    try:
        data = json.loads(text)
    except ValueError as error:
        raise BundleError(["bundle.json is not valid JSON (%s): %s." % (error, REBUILD)])
    if not isinstance(data, dict):
        raise BundleError(["bundle.json is not a JSON object: %s." % REBUILD])
    version = data.get("format")
    if isinstance(version, bool) or version != FORMAT:  # JSON true equals 1 in Python
        raise BundleError(["bundle.json has format %r, but this collection reads format %d: %s." % (
            version, FORMAT, REBUILD)])
    problems = []
    for field in ("kubernetes_version", "kube_vip_version", "architecture"):
        if not isinstance(data.get(field), str) or not data[field].strip():
            problems.append("bundle.json has no %s: %s." % (field, REBUILD))
    files = data.get("files")
    if not isinstance(files, list) or not files:
        problems.append("bundle.json lists no files: %s." % REBUILD)
        files = []
    for index, entry in enumerate(files):
        problems.extend(_check_entry(index, entry))
    if problems:
        raise BundleError(problems)
    problems = _check_unique(files)
    if problems:
        raise BundleError(problems)
    return data


def binaries(manifest):
    """The manifest's binary entries."""
    return [entry for entry in manifest["files"] if entry["kind"] == "binary"]


def images(manifest):
    """The manifest's image entries."""
    return [entry for entry in manifest["files"] if entry["kind"] == "image"]


def bundle_references(manifest):
    """Every image reference of the bundle, normalized."""
    return set(normalize_reference(ref) for entry in images(manifest) for ref in entry["references"])


# ---- the cluster's images ---------------------------------------------------------------------------


def required_images(kubernetes_version, image_repository=None, pause=None, kube_vip_version=None,
                    kube_vip_image=None):
    """The images the nodes run, as dicts: ``name``, ``reference`` (exact) or ``repository`` (any tag), ``why``.

    kubeadm's images for that version from ``image_repository`` (its imageRepository; etcd's and CoreDNS's
    tags depend on the patch release, so any tag of their repositories counts; CoreDNS is
    ``<registry.k8s.io>/coredns/coredns`` but ``<other repository>/coredns``, as kubeadm names it), the pause
    image containerd is configured with (``pause``, else that version's), and kube-vip's, as its manifest names
    it. Raises BundleError for a version or kube-vip setting that cannot be.
    """
    try:
        version = parse_kubernetes_version(kubernetes_version)
    except NodePrepError as error:
        raise BundleError([str(error)])
    kube_vip_version = kube_vip_version or DEFAULT_KUBE_VIP_VERSION
    try:
        kube_vip = manifest_image(kube_vip_version, kube_vip_image or None)
    except KubeVipOptionError as error:
        raise BundleError(["kube_vip_version/kube_vip_image: %s" % error])
    repository = (image_repository or DEFAULT_IMAGE_REPOSITORY).rstrip("/")
    release = "%d.%d.%d" % version
    kubeadm = "which kubeadm %s runs" % release
    wanted = [
        {"name": name, "reference": "%s/%s:v%s" % (repository, name, release), "why": kubeadm}
        for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")
    ]
    coredns = "%s/coredns" % repository + ("/coredns" if repository == DEFAULT_IMAGE_REPOSITORY else "")
    wanted.append({"name": "etcd", "repository": "%s/etcd" % repository, "why": kubeadm})
    wanted.append({"name": "coredns", "repository": coredns, "why": kubeadm})
    wanted.append({"name": "pause", "reference": pause or pause_image(version[1], repository),
                   "why": "the pause image containerd's configuration names (node_prep_pause_image, or that of "
                          "Kubernetes 1.%d)" % version[1]})
    wanted.append({"name": "kube-vip", "reference": kube_vip,
                   "why": "the image the kube-vip manifest names (kube_vip_version %s, kube_vip_image %s)" % (
                       kube_vip_version, kube_vip_image or "unset")})
    return wanted


def missing_images(manifest, wanted):
    """The elements of ``wanted`` (see required_images) that no image of the bundle provides."""
    present = bundle_references(manifest)
    repositories = set(split_reference(ref)[0] for ref in present)
    missing = []
    for item in wanted:
        if "reference" in item:
            if normalize_reference(item["reference"]) not in present:
                missing.append(item)
        elif split_reference(item["repository"] + ":x")[0] not in repositories:
            missing.append(item)
    return missing


def _missing_image_sentence(item):
    if "reference" in item:
        return "The bundle holds no image %s, %s: %s." % (item["reference"], item["why"], REBUILD)
    return ("The bundle holds no %s image (any tag of %s), %s: %s." % (
        item["name"], item["repository"], item["why"], REBUILD))


def check_manifest(manifest, kubernetes_version, image_repository=None, pause=None, kube_vip_version=None,
                   kube_vip_image=None):
    """Sentences for a parsed bundle that cannot install this cluster: another Kubernetes version, a missing
    binary, a missing image (see required_images). An empty list means it can."""
    wanted = required_images(kubernetes_version, image_repository, pause, kube_vip_version, kube_vip_image)
    problems = []
    release = "%d.%d.%d" % parse_kubernetes_version(kubernetes_version)
    bundled = str(manifest["kubernetes_version"]).strip().lstrip("v")
    if bundled != release:
        problems.append(
            "The bundle holds Kubernetes %s, but vipadm_kubernetes_version is %s: build a bundle for %s "
            "(playbooks/bundle.yml), or set vipadm_kubernetes_version to %s." % (bundled, release, release, bundled))
        # Its kubeadm images are those of the other release: one sentence says it; kube-vip's is still checked.
        wanted = [item for item in wanted if item["name"] == "kube-vip"]
    names = set(entry["name"] for entry in binaries(manifest))
    for name in BINARIES:
        if name not in names:
            problems.append("The bundle has no %s binary (bin/%s, kind binary, name %s in bundle.json): %s." % (
                name, name, name, REBUILD))
    problems.extend(_missing_image_sentence(item) for item in missing_images(manifest, wanted))
    return problems


# ---- SHA256SUMS -------------------------------------------------------------------------------------


def render_sha256sums(manifest):
    """SHA256SUMS in ``sha256sum -c`` format: ``<hex>  <path>`` per file, in bundle.json's order."""
    return "".join("%s  %s\n" % (entry["sha256"], entry["path"]) for entry in manifest["files"])


def sha256sums_problems(text, manifest):
    """Sentences where SHA256SUMS does not say what bundle.json says (every file, the same checksum)."""
    if text is None:
        return ["The bundle has no SHA256SUMS: %s." % REBUILD]
    listed = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _SUMS_LINE_RE.match(line)
        if not match:
            return ["SHA256SUMS line %d is not \"<sha256>  <path>\": %s." % (number, REBUILD)]
        listed[match.group(2)] = match.group(1).lower()
    problems = []
    for entry in manifest["files"]:
        path = entry["path"]
        if path not in listed:
            problems.append("SHA256SUMS does not list %s, which bundle.json lists: %s." % (path, REBUILD))
        elif listed[path] != entry["sha256"]:
            problems.append("SHA256SUMS and bundle.json give %s different checksums: %s." % (path, REBUILD))
    for path in sorted(set(listed) - set(entry["path"] for entry in manifest["files"])):
        problems.append("SHA256SUMS lists %s, which bundle.json does not: %s." % (path, REBUILD))
    return problems


# ---- one node ---------------------------------------------------------------------------------------


def node_problems(manifest, pause, machine, containerd_found=True):
    """Sentences for a node the bundle cannot serve: another architecture, containerd's pause image not in
    the bundle, no containerd where node_prep does not install it (``containerd_found`` False)."""
    problems = []
    architecture = go_architecture(machine)
    if architecture != manifest["architecture"]:
        problems.append(
            "This node is %s (%s), but the bundle holds binaries and images for %s: build a bundle for %s "
            "(playbooks/bundle.yml with bundle_architecture=%s)." % (
                machine, architecture, manifest["architecture"], architecture, architecture))
    if normalize_reference(pause) not in bundle_references(manifest):
        problems.append(
            "The bundle holds no image %s, the pause image containerd's configuration names on this node: set "
            "node_prep_pause_image to a pause image the bundle holds, or %s." % (pause, REBUILD))
    if not containerd_found:
        problems.append(
            "This node has no containerd, and node_prep installs none with node_prep_install_packages false: "
            "install containerd from your distribution's repositories (through your mirror), or set "
            "node_prep_install_packages to true so that node_prep installs it from the node's configured "
            "repositories.")
    return problems


def node_plan(manifest, installed, listed):
    """What a node lacks of the bundle.

    ``installed``: binary name -> {"sha256": hex, "mode": int} of the file in the bin directory (absent:
    not installed). ``listed``: what ``ctr -n k8s.io images ls -q`` printed (one reference a line), or None
    when containerd did not answer (then every image is lacking).

    Returns ``binaries`` (the entries to copy: absent, another checksum, or not mode 0755) and ``images``
    (the entries with a reference containerd does not list, each with ``missing``: those references).
    """
    copy = []
    for entry in binaries(manifest):
        state = installed.get(entry["name"]) or {}
        if state.get("sha256") != entry["sha256"] or state.get("mode") != BINARY_MODE:
            copy.append(dict(entry))
    present = None if listed is None else set(normalize_reference(line) for line in listed if line.strip())
    imports = []
    for entry in images(manifest):
        missing = [ref for ref in entry["references"]
                   if present is None or normalize_reference(ref) not in present]
        if missing:
            imports.append(dict(entry, missing=missing))
    return {"binaries": copy, "images": imports}


# ---- writing a bundle -------------------------------------------------------------------------------


def wanted_images(references):
    """Image references -> the image entries of a new bundle (``path``, ``references``), without sha256.

    Duplicates (after normalization) are listed once; digest references, and two images that would share an
    archive name, raise BundleError.
    """
    entries, by_reference, problems = [], set(), []
    paths = {}
    for reference in references:
        text = str(reference).strip()
        if "@" in text:
            problems.append("The image %s is a digest reference: give it with a tag, the name containerd lists "
                            "after the import." % text)
            continue
        normalized = normalize_reference(text)
        if normalized in by_reference:
            continue
        by_reference.add(normalized)
        path = "images/" + image_file_name(text)
        if path in paths:
            problems.append("The images %s and %s would both be stored as %s: leave one of them out." % (
                paths[path], text, path))
            continue
        paths[path] = text
        entries.append({"path": path, "kind": "image", "references": [text]})
    if problems:
        raise BundleError(problems)
    return entries


def images_to_fetch(wanted, previous, present):
    """The wanted image entries an earlier build did not leave in place.

    ``previous``: the parsed bundle.json already in the directory (or None); ``present``: path -> sha256 of
    the archives there. An archive is kept when bundle.json lists it with the same references and its
    checksum matches the file.
    """
    recorded = {}
    for entry in images(previous) if previous else []:
        recorded[entry["path"]] = entry
    fetch = []
    for entry in wanted:
        earlier = recorded.get(entry["path"])
        if (earlier is None or present.get(entry["path"]) != earlier["sha256"]
                or earlier["references"] != entry["references"]):
            fetch.append(entry)
    return fetch


def build_manifest(kubernetes_version, kube_vip_version, architecture, files):
    """bundle.json's content: ``files`` are entries with their sha256 (binaries first, in that order)."""
    return {
        "format": FORMAT,
        "kubernetes_version": "%d.%d.%d" % parse_kubernetes_version(kubernetes_version),
        "kube_vip_version": kube_vip_version,
        "architecture": architecture,
        "files": list(files),
    }


def render_manifest(manifest):
    """bundle.json's text: indented JSON with a final newline."""
    return json.dumps(manifest, indent=2) + "\n"
