"""Container images without a registry or a Docker engine: docker-archive tarballs that
`ctr -n k8s.io image import` takes, one layer made from files of this machine.

Deterministic: entries sorted, owner root, mtime 0, so the same files give the same image ID.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
from pathlib import Path

PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# A minimal account database: some programs look up root or nobody by name.
ETC_FILES = {
    "etc/passwd": b"root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n",
    "etc/group": b"root:x:0:\nnogroup:x:65534:\n",
}


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    """What goes into one image: files (path in image -> file on this machine), symlinks
    (path in image -> link target), the entrypoint and the exact reference(s) to tag it with."""

    references: tuple[str, ...]
    files: dict[str, str]
    entrypoint: tuple[str, ...]
    symlinks: dict[str, str] = dataclasses.field(default_factory=dict)
    directories: tuple[str, ...] = ("tmp",)


def _tarinfo(name: str, kind: bytes, mode: int, size: int = 0, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.linkname = linkname
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = 0
    return info


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def write_layer(spec: ImageSpec, out) -> None:
    """The layer tar of spec into the binary file object out."""
    entries: dict[str, tuple] = {}
    for path, source in spec.files.items():
        entries[path.lstrip("/")] = ("file", source)
    for path, target in spec.symlinks.items():
        entries[path.lstrip("/")] = ("symlink", target)
    for path, data in ETC_FILES.items():
        entries.setdefault(path, ("bytes", data))
    for path in spec.directories:
        entries.setdefault(path.strip("/"), ("dir", 0o1777 if path.strip("/") == "tmp" else 0o755))
    directories = {parent for name in entries for parent in _parents(name)} - set(entries)
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(set(entries) | directories):
            kind, value = entries.get(name, ("dir", 0o755))
            if kind == "dir":
                tar.addfile(_tarinfo(name, tarfile.DIRTYPE, value))
            elif kind == "symlink":
                tar.addfile(_tarinfo(name, tarfile.SYMTYPE, 0o777, linkname=value))
            elif kind == "bytes":
                tar.addfile(_tarinfo(name, tarfile.REGTYPE, 0o644, len(value)), io.BytesIO(value))
            else:
                stat = os.stat(value)
                mode = 0o755 if stat.st_mode & 0o111 else 0o644
                with open(value, "rb") as f:
                    tar.addfile(_tarinfo(name, tarfile.REGTYPE, mode, stat.st_size), f)


def image_config(spec: ImageSpec, layer_digest: str) -> dict:
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {"Entrypoint": list(spec.entrypoint), "Env": [PATH_ENV], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "vipadm lab components builder"}],
    }


def write_image(spec: ImageSpec, destination: Path) -> str:
    """Write the docker-archive of spec to destination; return the image ID (sha256 of the config)."""
    destination = Path(destination)
    with tempfile.TemporaryFile(dir=destination.parent) as layer:
        write_layer(spec, layer)
        layer.seek(0)
        digest = hashlib.sha256()
        for chunk in iter(lambda: layer.read(1 << 20), b""):
            digest.update(chunk)
        layer_digest = digest.hexdigest()
        config = json.dumps(image_config(spec, layer_digest), sort_keys=True, separators=(",", ":")).encode()
        image_id = hashlib.sha256(config).hexdigest()
        manifest = json.dumps(
            [{"Config": f"{image_id}.json", "RepoTags": list(spec.references), "Layers": [f"{layer_digest}/layer.tar"]}]
        ).encode()
        size = layer.tell()
        layer.seek(0)
        with tarfile.open(destination, "w", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(_tarinfo(f"{image_id}.json", tarfile.REGTYPE, 0o644, len(config)), io.BytesIO(config))
            tar.addfile(_tarinfo(f"{layer_digest}/", tarfile.DIRTYPE, 0o755))
            tar.addfile(_tarinfo(f"{layer_digest}/layer.tar", tarfile.REGTYPE, 0o644, size), layer)
            tar.addfile(_tarinfo("manifest.json", tarfile.REGTYPE, 0o644, len(manifest)), io.BytesIO(manifest))
    return image_id


_LDD_LINE = re.compile(r"^\s*(?:\S+\s+=>\s+)?(/\S+)\s+\(0x[0-9a-f]+\)\s*$")


def parse_ldd(output: str) -> list[str]:
    """Absolute paths of the shared libraries that `ldd` lists (the vdso and "not found" are left out)."""
    paths = []
    for line in output.splitlines():
        match = _LDD_LINE.match(line)
        if match and match[1] not in paths:
            paths.append(match[1])
    return paths


# The names kube-proxy (and the tools it runs) call; xtables-*-multi dispatches on argv[0].
IPTABLES_NAMES = (
    "iptables", "iptables-save", "iptables-restore",
    "ip6tables", "ip6tables-save", "ip6tables-restore",
)  # fmt: skip


def read_image_references(archive: Path) -> list[str]:
    """RepoTags of a docker-archive (for checks and messages)."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("manifest.json")
        if member is None:
            raise ValueError(f"{archive} has no manifest.json")
        return [tag for entry in json.load(member) for tag in entry.get("RepoTags", [])]
