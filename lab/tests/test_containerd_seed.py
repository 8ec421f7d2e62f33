"""The containerd seed (lab/nodes/containerd_seed.py): which files nodes share, when a seed is made again, and,
with root and Debian's containerd, a seed made from two small images that a planted root's own containerd serves
while the seed's files stay as they were."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lab.components import images
from lab.nodes import containerd_seed as seeds


@pytest.mark.parametrize(("relative", "shared"), [
    ("io.containerd.content.v1.content/blobs/sha256/0123abcd", True),
    ("io.containerd.snapshotter.v1.overlayfs/snapshots/1/fs/usr/local/bin/etcd", True),
    ("io.containerd.snapshotter.v1.overlayfs/snapshots/1/fs", False),  # the directory itself is made, not linked
    ("io.containerd.snapshotter.v1.overlayfs/metadata.db", False),
    ("io.containerd.metadata.v1.bolt/meta.db", False),
    ("io.containerd.content.v1.content/ingest/x/data", False),
    ("io.containerd.snapshotter.v1.overlayfs/snapshots/1/work/x", False),
])  # fmt: skip
def test_only_blobs_and_unpacked_layers_are_shared(relative, shared):
    assert seeds.is_shared(relative) is shared


def test_the_key_follows_the_archives_and_containerd(tmp_path):
    archive = tmp_path / "a.tar"
    archive.write_bytes(b"one")
    key = seeds.seed_key([archive], "containerd 1.6.20")
    assert seeds.seed_key([archive], "containerd 1.6.20") == key
    assert seeds.seed_key([archive], "containerd 1.7.24") != key
    archive.write_bytes(b"other")  # a rebuilt archive: new size and modification time
    assert seeds.seed_key([archive], "containerd 1.6.20") != key


def _containerd_ready():
    return os.geteuid() == 0 and Path(seeds.CONTAINERD).exists() and shutil.which("ctr") is not None


@pytest.mark.skipif(not _containerd_ready(), reason="needs root and Debian's containerd")
def test_a_planted_root_serves_the_seeds_images_and_leaves_the_seed_as_it_was(tmp_path):
    archives = []
    for name in ("one", "two"):
        content = tmp_path / name
        content.write_text(f"#!/bin/sh\necho {name}\n")
        archive = tmp_path / f"{name}.tar"
        images.write_image(images.ImageSpec((f"vipadm.test/{name}:v1",), {f"usr/local/bin/{name}": str(content)},
                                            (f"/usr/local/bin/{name}",)), archive)  # fmt: skip
        archives.append(archive)
    cache = tmp_path / "cache"
    made = []
    seed = seeds.ensure_seed(archives, cache, log=made.append)
    assert len(made) == 1 and seed.is_dir()
    assert seeds.ensure_seed(archives, cache, log=made.append) == seed and len(made) == 1  # taken, not made again
    before = {path: path.stat().st_mtime_ns for path in seed.rglob("*") if path.is_file()}
    assert not (seed / "io.containerd.grpc.v1.introspection" / "uuid").exists()

    roots = [tmp_path / "node1", tmp_path / "node2"]
    for root in roots:
        root.mkdir()
        seeds.plant(seed, root)
    blobs = list((roots[0] / "io.containerd.content.v1.content" / "blobs" / "sha256").iterdir())
    assert blobs and all(blob.stat().st_nlink == 3 for blob in blobs)  # the seed's and both nodes'
    for root in roots:
        assert (root / "io.containerd.metadata.v1.bolt" / "meta.db").stat().st_nlink == 1
        assert (root / "io.containerd.snapshotter.v1.overlayfs" / "metadata.db").stat().st_nlink == 1

    # The node's containerd (same program, its own root) lists both images, unpacked, and writes its own files.
    with seeds.running_containerd(roots[0], tmp_path / "node1.log") as exec_argv:

        def ctr(*argv: str) -> str:
            return subprocess.run(exec_argv(["ctr", "-n", "k8s.io", *argv]), capture_output=True, text=True,
                                  check=True).stdout  # fmt: skip

        listed = ctr("images", "ls")
        assert "vipadm.test/one:v1" in listed and "vipadm.test/two:v1" in listed
        assert "Committed" in ctr("snapshots", "ls")
        ctr("images", "rm", "vipadm.test/two:v1")
    assert (roots[0] / "io.containerd.grpc.v1.introspection" / "uuid").exists()
    assert {path: path.stat().st_mtime_ns for path in seed.rglob("*") if path.is_file()} == before
    assert all(path.exists() for path in before)
