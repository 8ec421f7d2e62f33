"""The pin's images in a node's containerd without importing them into every node.

An installed node starts with the pin's images in containerd, as a machine whose images were loaded before
vipadm runs. Importing them (`ctr -n k8s.io images import`: some 400 MB read, hashed, written and unpacked per
node) was a fifth of the CPU time of `make test`'s lab suites, for the same bytes in every node. So the images
are imported once per image set and containerd build into a containerd root of its own (the seed, in the
components cache), and each node's /var/lib/containerd starts as a copy of it in which the image content and
the unpacked layers are hard links: containerd never writes those files again (content is addressed by its
digest, committed snapshots are overlay lower dirs), while the databases and every other file are the node's
own copies, so nothing a node does reaches the seed or another node.

Bare nodes never get a seed: their images come from the bundle through node_prep, the path under test.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from . import real as realnode

# Part of the seed's key: a new layout of the seed is a new seed.
SEED_FORMAT = 1
CONTAINERD = "/usr/bin/containerd"
# The files a node shares with the seed (hard links), as paths relative to the containerd root: content blobs and
# the files of unpacked layers. Everything else is copied.
SHARED_PREFIXES = ("io.containerd.content.v1.content/blobs/",)
SHARED_SNAPSHOT_DIR = "io.containerd.snapshotter.v1.overlayfs/snapshots/"
STOP_TIMEOUT = 30.0


@functools.lru_cache(maxsize=1)  # asked once per process, not once per node
def containerd_version() -> str:
    return subprocess.run([CONTAINERD, "--version"], capture_output=True, text=True, check=True).stdout.strip()


def seed_key(archives: list[Path], containerd: str) -> str:
    """Changes with the image archives (path, size, modification time) and the containerd build."""
    stats = [[str(path), path.stat().st_size, path.stat().st_mtime_ns] for path in sorted(archives)]
    text = json.dumps([SEED_FORMAT, containerd, stats])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def is_shared(relative: str) -> bool:
    """Whether a file of the seed (path relative to its root) is shared with the nodes by a hard link."""
    if relative.startswith(SHARED_PREFIXES):
        return True
    if relative.startswith(SHARED_SNAPSHOT_DIR):
        parts = relative[len(SHARED_SNAPSHOT_DIR) :].split("/")
        return len(parts) > 2 and parts[1] == "fs"  # snapshots/<id>/fs/...
    return False


def _config(root: Path, state: Path) -> str:
    # Only what an import needs: no CRI plugin (it would set up networking and watch for pods).
    return (
        "version = 2\n"
        f'root = "{root}"\n'
        f'state = "{state}"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        "[grpc]\n"
        f'  address = "{state}/containerd.sock"\n'
        '[plugins."io.containerd.internal.v1.opt"]\n'
        f'  path = "{root}/opt"\n'
    )


@contextlib.contextmanager
def running_containerd(root: Path, log_path: Path):
    """A containerd of its own on the containerd root at root while the block runs; yields the exec_argv that
    lab/nodes/real.py's helpers take (ctr pointed at its socket)."""
    state = Path(tempfile.mkdtemp(prefix="vipadm-seed-", dir="/run"))  # short: the socket path has a length limit
    config = state / "config.toml"
    config.write_text(_config(root, state))
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([CONTAINERD, "--config", str(config)], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=log, start_new_session=True)  # fmt: skip

    def exec_argv(argv: list[str]) -> list[str]:
        return [argv[0], "--address", str(state / "containerd.sock"), *argv[1:]]

    try:
        realnode.wait_containerd(exec_argv, "seed")
        yield exec_argv
    finally:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(state, ignore_errors=True)


def _import(archives: list[Path], root: Path, log_path: Path) -> None:
    """Import archives into a new containerd root at root, as a node's images are imported."""
    with running_containerd(root, log_path) as exec_argv:
        realnode.import_images(exec_argv, "seed", archives)
    # Each containerd names itself with this file on its first start: every node makes its own.
    (root / "io.containerd.grpc.v1.introspection" / "uuid").unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def ensure_seed(archives: list[Path], cache: Path, log=None) -> Path:
    """The seed's containerd root for archives, made unless the cache has it (one maker at a time per key)."""
    key = seed_key(archives, containerd_version())
    seed = cache / f"containerd-seed-{key}"
    if seed.is_dir():
        return seed
    with _locked(cache / "locks" / f"containerd-seed-{key}.lock"):
        if seed.is_dir():
            return seed
        (cache / "tmp").mkdir(parents=True, exist_ok=True)
        making = Path(tempfile.mkdtemp(prefix=f"containerd-seed-{key}.", dir=cache / "tmp"))
        try:
            started = time.monotonic()
            _import(archives, making / "root", making / "containerd.log")
            os.rename(making / "root", seed)
            if log:
                log(f"containerd seed of {len(archives)} images made in {time.monotonic() - started:.1f} s: {seed}")
        finally:
            shutil.rmtree(making, ignore_errors=True)
    return seed


def plant(seed: Path, root: Path) -> None:
    """Fill the empty directory root (a node's /var/lib/containerd) from seed: shared files as hard links, the
    rest copied, directories with their modes, owners and extended attributes (cp -a)."""
    # cp -a --link makes the tree in one pass (directories with their attributes, every file a link); the files
    # that are not shared are then replaced by copies, so that the node never writes into the seed.
    subprocess.run(["cp", "-a", "--link", f"{seed}/.", f"{root}/"], check=True, capture_output=True)
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory, name)
            if path.is_symlink() or is_shared(str(path.relative_to(root))):
                continue
            copy = path.with_name(name + ".vipadm-copy")
            shutil.copy2(path, copy)
            os.replace(copy, path)
