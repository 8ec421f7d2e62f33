"""The machine's limits that every lab's nodes share: fs.inotify.max_user_instances.

The nodes have no user namespace of their own, so every kubelet and containerd of every lab on the
machine takes its inotify instances from root's fs.inotify.max_user_instances (128 by default). A
kubelet that cannot get one fails to start cAdvisor ("inotify_init: too many open files"), exits, is
restarted again and again and never registers its Node: the default holds about ten real nodes (kind
documents the same limit for its nodes). `lab up` raises the limit when the nodes it is about to
start would exceed it, and never lowers it.
"""

from __future__ import annotations

import os
from pathlib import Path

MAX_USER_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
# Measured on running real nodes (bench/results/results.json, memory.*.inotify): a control plane holds
# about 17 instances (kubelet, containerd, the control plane's programs), a worker about 9. The
# estimate takes a margin on top, for what their pods add.
PER_CONTROL_PLANE = 17
PER_WORKER = 9
MARGIN = 2  # also covers labs that start at the same time (each counts only what already runs)


def instances_held(pid: int) -> int:
    """How many inotify instances (file descriptors) the process holds."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return 0
    count = 0
    for fd in fds:
        try:
            count += os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:inotify"
        except OSError:
            continue
    return count


def instances_in_use() -> int:
    """inotify instances held by every process of the machine (root's limit counts them all: the lab's
    nodes, other labs' nodes, the host's own daemons)."""
    return sum(instances_held(int(pid)) for pid in os.listdir("/proc") if pid.isdigit())


def instances_needed(control_planes: int, workers: int, in_use: int) -> int:
    """The limit that holds what is in use plus the nodes about to start (with a margin)."""
    return in_use + int(MARGIN * (PER_CONTROL_PLANE * control_planes + PER_WORKER * workers))


def ensure_instances(needed: int, log=None) -> tuple[int, int]:
    """Raise fs.inotify.max_user_instances to `needed` when it is lower; never lower it. Says so in one
    line through `log` when it raises. Returns (before, after)."""
    before = int(MAX_USER_INSTANCES.read_text(encoding="ascii"))
    if before >= needed:
        return before, before
    MAX_USER_INSTANCES.write_text(f"{needed}\n", encoding="ascii")
    if log is not None:
        log(f"lab: fs.inotify.max_user_instances raised from {before} to {needed}: the kubelets and containerds "
            "of every lab's nodes share root's (a kubelet without one never registers its Node)")
    return before, needed


def ensure_for_nodes(control_planes: int, workers: int, log=None) -> tuple[int, int]:
    """`ensure_instances` for real nodes about to start, on top of what the machine holds now."""
    return ensure_instances(instances_needed(control_planes, workers, instances_in_use()), log)
