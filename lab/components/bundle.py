"""The air-gapped bundle: what node_prep (bundle mode) installs on a node that reaches no registry and no
package repository, written from the builder's results of one pin.

    <bundle>/
      bundle.json    {"format": 1, "kubernetes_version": "1.36.3", "kube_vip_version": "v1.2.3",
                      "architecture": "amd64", "files": [{"path", "kind": "binary", "name", "sha256"},
                      {"path", "kind": "image", "sha256", "references"}, ...]}
      SHA256SUMS     `sha256sum -c` format ("<hex>  <path>"), every file bundle.json lists
      bin/kubeadm bin/kubelet bin/kubectl        mode 0755
      images/<name>-<tag>.tar                    the builder's docker-archives, references in RepoTags

Every image of the pin is there: the control plane and kube-proxy, etcd, CoreDNS, pause and kube-vip (the
lab's test Pods run the pin's etcd image: no image beyond the pin's). A file is a hard link from the
components cache when the bundle is on the same file system, else a copy, so a bundle next to the cache
takes no space; a file already there with the right content is not written again. SHA256SUMS and
bundle.json are replaced atomically (bundle.json last) and only when their content changes; files an
earlier bundle.json listed and this one does not are removed. One writer at a time per bundle (flock on
the directory). The files are the cache's own when linked: never edit them in place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import platform
import shutil
from pathlib import Path

from .build import BuildError, PinBuild
from .images import read_image_references

FORMAT = 1
BINARIES = ("kubeadm", "kubelet", "kubectl")
BINARY_MODE = 0o755
IMAGE_MODE = 0o644
MANIFEST = "bundle.json"
SUMS = "SHA256SUMS"
DIGESTS = "digests.json"  # in the components cache: sha256 of its files (they never change in place)
ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64"}  # uname -m -> Go's GOARCH, as the builder builds


@dataclasses.dataclass(frozen=True)
class Bundle:
    """A bundle as written: its directory, the content of its bundle.json, the paths written this time."""

    directory: Path
    manifest: dict
    written: list[str]

    @property
    def size(self) -> int:
        return sum((self.directory / entry["path"]).stat().st_size for entry in self.manifest["files"])


@dataclasses.dataclass(frozen=True)
class _File:
    entry: dict  # bundle.json's entry without sha256
    source: Path
    mode: int


def architecture() -> str:
    machine = platform.machine()
    return ARCHITECTURES.get(machine, machine)


def _cache_dir(build: PinBuild) -> Path:
    return next(iter(build.results.values())).path.parent


def lab_bundle_dir(build: PinBuild) -> Path:
    """The bundle the lab writes once per pin, beside the components cache (so its files are hard links):
    <cache>/bundles/kubernetes-<version>-kube-vip-<tag>."""
    return _cache_dir(build).parent / "bundles" / f"kubernetes-{build.kubernetes_version}-kube-vip-{build.kube_vip_tag}"


def image_file_name(reference: str) -> str:
    """registry.k8s.io/coredns/coredns:v1.14.2 -> coredns-v1.14.2.tar"""
    repository, _, tag = reference.rpartition(":")
    if not repository or "/" in tag:
        raise BuildError(f"image reference {reference!r} has no tag")
    return f"{repository.rsplit('/', 1)[-1]}-{tag}.tar"


def _files(build: PinBuild) -> list[_File]:
    files = [
        _File({"path": f"bin/{name}", "kind": "binary", "name": name}, build.binary(name), BINARY_MODE) for name in BINARIES
    ]
    images = []
    for archive in build.images:
        references = read_image_references(archive)
        if not references:
            raise BuildError(f"the image archive {archive} names no reference (RepoTags)")
        images.append(_File({"path": f"images/{image_file_name(references[0])}", "kind": "image",
                             "references": references}, archive, IMAGE_MODE))  # fmt: skip
    paths = [item.entry["path"] for item in images]
    if len(set(paths)) != len(paths):
        raise BuildError(f"two images of Kubernetes {build.kubernetes_version} would share a file name: {sorted(paths)}")
    return files + sorted(images, key=lambda item: item.entry["path"])


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class _Digests:
    """sha256 of the cache's files, remembered in <cache>/digests.json by path with the file's device,
    inode, size and mtime: a builder result is renamed into place whole and never written again."""

    def __init__(self, cache: Path):
        self.path = cache / DIGESTS
        try:
            self.known = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.known = {}
        self.changed = False

    def sha256(self, path: Path) -> str:
        st = path.stat()
        identity = [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]
        known = self.known.get(str(path))
        if known and known[:4] == identity:
            return known[4]
        digest = sha256_file(path)
        self.known[str(path)] = [*identity, digest]
        self.changed = True
        return digest

    def save(self) -> None:
        if self.changed:
            self.known = {path: value for path, value in self.known.items() if os.path.exists(path)}
            _replace(self.path, json.dumps(self.known, indent=1, sort_keys=True) + "\n")


def _replace(path: Path, text: str) -> bool:
    """Write text to path atomically (a temporary file renamed over it) unless it is there already."""
    try:
        if path.read_text() == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return True


def _is_right(target: Path, source: Path, sha256: str, mode: int) -> bool:
    """target holds source's content (the same inode, or the same sha256) with mode; a copy with the
    right content and another mode gets its mode."""
    try:
        st, src = os.lstat(target), os.stat(source)
    except FileNotFoundError:
        return False
    if not os.path.isfile(target) or os.path.islink(target):
        return False
    if (st.st_dev, st.st_ino) == (src.st_dev, src.st_ino):
        return st.st_mode & 0o7777 == mode
    if st.st_size != src.st_size or sha256_file(target) != sha256:
        return False
    if st.st_mode & 0o7777 != mode:
        os.chmod(target, mode)
    return True


def _place(source: Path, target: Path, mode: int) -> None:
    """A hard link of source at target (when on the same file system and source has mode), else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        if os.stat(source).st_mode & 0o7777 != mode:
            raise OSError("another mode")
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
        os.chmod(tmp, mode)
    os.replace(tmp, target)


@contextlib.contextmanager
def _locked(directory: Path):
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _listed(directory: Path) -> set[str]:
    """The paths of bin/ and images/ that the bundle.json in directory lists (none when there is none)."""
    try:
        paths = {entry["path"] for entry in json.loads((directory / MANIFEST).read_text())["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    return {path for path in paths if isinstance(path, str) and len(Path(path).parts) == 2
            and Path(path).parts[0] in ("bin", "images") and not path.startswith(("bin/.", "images/."))}  # fmt: skip


def write_bundle(build: PinBuild, directory: Path | str, log=None) -> Bundle:
    """Write (or bring up to date) the bundle of build's pin in directory; see the module's docstring."""
    directory = Path(directory).absolute()
    directory.mkdir(parents=True, exist_ok=True)
    log = log or (lambda line: None)
    with _locked(directory):
        digests = _Digests(_cache_dir(build))
        entries, written = [], []
        for item in _files(build):
            sha256 = digests.sha256(item.source)
            target = directory / item.entry["path"]
            if not _is_right(target, item.source, sha256, item.mode):
                _place(item.source, target, item.mode)
                written.append(item.entry["path"])
            entries.append({**item.entry, "sha256": sha256})
        digests.save()
        manifest = {
            "format": FORMAT,
            "kubernetes_version": build.kubernetes_version,
            "kube_vip_version": build.kube_vip_tag,
            "architecture": architecture(),
            "files": entries,
        }
        stale = _listed(directory) - {entry["path"] for entry in entries}
        _replace(directory / SUMS, "".join(f"{entry['sha256']}  {entry['path']}\n" for entry in entries))
        _replace(directory / MANIFEST, json.dumps(manifest, indent=2) + "\n")
        for path in sorted(stale):
            (directory / path).unlink(missing_ok=True)
    log(f"bundle of Kubernetes {build.kubernetes_version} + kube-vip {build.kube_vip_tag} in {directory}: "
        f"{len(entries)} files, {len(written)} written, {len(entries) - len(written)} already there")  # fmt: skip
    return Bundle(directory, manifest, written)
