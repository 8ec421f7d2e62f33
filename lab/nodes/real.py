"""What a lab node needs to run the real kubelet and containerd, kept in one place.

A fresh node is what a freshly installed bare-metal machine is to a user: containerd, runc and the
CNI plugins from Debian's packages (the host's /usr), containerd enabled as its package enables it,
kubeadm/kubelet/kubectl of the pinned release with the kubelet unit and kubeadm drop-in the
Kubernetes packages install, and the images kubeadm and kube-vip need already in containerd (no
node ever reaches a registry). A bare node (node software "bare") has only the packages' part, and no
route out of the lab: an air-gapped machine, which node_prep fills from the pin's bundle. The rest makes
up for the machine, not for vipadm:
- each node's kubelet gets its own cgroup root (all nodes share the machine's cgroup v1 tree; two
  kubelets on one root would treat each other's pods as orphans): /etc/default/kubelet;
- /var/lib/containerd is a plain directory (an overlay cannot hold containerd's overlay snapshots);
- the kubelets neither evict for disk pressure nor collect images: they all see the machine's one disk;
Settings a user could need as well (cgroupfs driver, restrict_oom_score_adj, KubeProxyConfiguration,
failCgroupV1) are variables of the collection that the lab's inventory sets (lab/core.py writes it).
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

CGROUP_MOUNTS = Path("/sys/fs/cgroup")
CONTAINERD_UNIT = "/lib/systemd/system/containerd.service"
IMPORT_TIMEOUT = 120.0
CONTAINERD_READY_TIMEOUT = 30.0

KUBELET_UNIT = """\
[Unit]
Description=kubelet: The Kubernetes Node Agent
Documentation=https://kubernetes.io/docs/
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=/usr/local/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=10

[Install]
WantedBy=multi-user.target
"""

# The drop-in of the Kubernetes packages: kubeadm writes /var/lib/kubelet/kubeadm-flags.env and
# config.yaml; /etc/default/kubelet is the administrator's (KUBELET_EXTRA_ARGS).
KUBEADM_DROPIN = """\
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/local/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
"""

HOST_BINARIES = ("kubeadm", "kubelet", "kubectl")
# containerd's output (stderr, logrus text at its default level, info): the systemctl stand-in writes a
# service's output to /var/log/lab/<unit>.log in the node (shims/systemctl, LOG_DIR), appended across boots.
CONTAINERD_LOG = "/var/log/lab/containerd.service.log"
# The CRI plugin logs every pull it is asked for at info level, before it resolves anything:
#   time="..." level=info msg="PullImage \"registry.k8s.io/pause:3.10.2\""
# (later lines of the same pull say `... failed` or `... returns image reference`).
_PULL_IMAGE = re.compile(r'level=info msg="PullImage \\"([^"\\]+)\\""(?=\s|$)', re.M)
_INFO_LINE = re.compile(r"^time=\S+ level=info ", re.M)


def cgroup_root(netns: str) -> str:
    """The node's cgroup root, unique on the machine (netns names carry the lab name)."""
    return f"/lab-{netns}"


def write_first_boot_files(etc: Path, cgroup: str, kubernetes: bool = True) -> None:
    """Into the node's /etc overlay upper dir (etc): containerd enabled and the kubelet's defaults for this
    machine; with kubernetes, also what the Kubernetes packages install (the kubelet unit and kubeadm's
    drop-in, the static Pod directory)."""
    units = etc / "systemd" / "system"
    wants = units / "multi-user.target.wants"
    wants.mkdir(exist_ok=True)
    (wants / "containerd.service").symlink_to(CONTAINERD_UNIT)  # as the containerd package enables it
    (etc / "default").mkdir(exist_ok=True)
    (etc / "default" / "kubelet").write_text(f"KUBELET_EXTRA_ARGS=--cgroup-root={cgroup}\n")
    if kubernetes:
        (units / "kubelet.service").write_text(KUBELET_UNIT)
        (units / "kubelet.service.d").mkdir(exist_ok=True)
        (units / "kubelet.service.d" / "10-kubeadm.conf").write_text(KUBEADM_DROPIN)
        (etc / "kubernetes" / "manifests").mkdir(parents=True, exist_ok=True)  # made by the kubelet package


def cgroup_dirs(cgroup: str) -> list[Path]:
    """The node's cgroup root in every mounted v1 hierarchy (cpu, memory, ..., name=systemd)."""
    dirs = []
    for hierarchy in sorted(CGROUP_MOUNTS.iterdir()):
        if hierarchy.is_dir() and not hierarchy.is_symlink() and (hierarchy / "cgroup.procs").exists():
            dirs.append(hierarchy / cgroup.lstrip("/"))
    return dirs


def create_cgroups(cgroup: str) -> None:
    for directory in cgroup_dirs(cgroup):
        directory.mkdir(exist_ok=True)


def remove_cgroups(cgroup: str, timeout: float = 10.0) -> list[str]:
    """rmdir the node's cgroup trees bottom-up (their processes must be gone); the ones left."""
    deadline = time.monotonic() + timeout
    left = []
    for top in cgroup_dirs(cgroup):
        if not top.exists():
            continue
        for directory, _, _ in sorted(os.walk(top), key=lambda entry: -entry[0].count("/")):
            while True:
                try:
                    os.rmdir(directory)
                    break
                except FileNotFoundError:
                    break
                except OSError:  # EBUSY while the kernel finishes the last exits
                    if time.monotonic() > deadline:
                        left.append(directory)
                        break
                    time.sleep(0.05)
    return left


def link_or_copy(source: Path, destination: Path) -> None:
    """A hard link from the components cache when it is on the same file system, else a copy."""
    destination.unlink(missing_ok=True)
    try:
        os.link(source, destination)
    except OSError:
        import shutil

        shutil.copy2(source, destination)


def wait_containerd(exec_argv, node: str, timeout: float = CONTAINERD_READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = subprocess.run(exec_argv(["ctr", "version"]), capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"containerd of node {node} did not answer within {timeout:.0f} s: {result.stderr.strip()}")
        time.sleep(0.2)


def image_pulls(log_text: str) -> list[str]:
    """The references of every CRI PullImage in containerd's log text, in order. Raises ValueError when
    the text has no info line (containerd would not have logged a PullImage either)."""
    if not _INFO_LINE.search(log_text):
        raise ValueError("containerd's log has no info line: its log level hides PullImage")
    return _PULL_IMAGE.findall(log_text)


def import_images(exec_argv, node: str, archives: list[Path]) -> None:
    """`ctr -n k8s.io image import` of each archive into the node's containerd (through stdin: the
    components cache is not visible inside a node)."""
    for archive in archives:
        with open(archive, "rb") as stream:
            result = subprocess.run(
                exec_argv(["ctr", "-n", "k8s.io", "images", "import", "-"]),
                stdin=stream, capture_output=True, text=True, timeout=IMPORT_TIMEOUT,
            )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"importing {archive.name} into node {node} failed: {result.stderr.strip()}")


# What the lab's inventory sets for this machine (group_vars/all.yml, after the common lines): the
# collection's own variables, as a user on a host without systemd, cgroup v1 and CAP_SYS_RESOURCE
# would set them.
INVENTORY_SETTINGS = """\
kube_vip_version: "{kube_vip_version}"
# No systemd as PID 1 here: the cgroupfs driver, in containerd and in the kubelet.
vipadm_cgroup_driver: cgroupfs
# containerd comes from its package, the kubelet preinstalled or from the bundle: node_prep enables them.
node_prep_manage_services: true
# Root without CAP_SYS_RESOURCE: runc may not lower oom_score_adj.
node_prep_containerd_restrict_oom_score_adj: true
# Debian's containernetworking-plugins package puts the CNI plugins here.
node_prep_cni_bin_dir: /usr/lib/cni
control_plane_kubelet_config:
  failCgroupV1: false  # this machine has cgroup v1 only; kubelet 1.35+ refuses it otherwise
  failSwapOn: false
  # Every node's kubelet sees the machine's one disk: its free space is not the node's to defend, and the
  # default thresholds (imagefs under 15 % free) evicted the lab's pods when other work filled the disk.
  # The images come from the components build and no registry gives them back, so none is collected.
  evictionHard:
    nodefs.available: "0%"
    nodefs.inodesFree: "0%"
    imagefs.available: "0%"
  imageGCHighThresholdPercent: 100
# Node pod ranges for the lab's pod network (lab/network/pods.py), as a CNI would want them.
control_plane_pod_subnet: 10.244.0.0/16
# nf_conntrack_max is machine-wide: a node may not write it (kind does the same).
control_plane_kube_proxy_config:
  conntrack:
    maxPerCore: 0
# kubeadm's SystemVerification fails on cgroup v1 with a 1.35+ kubelet.
control_plane_ignore_preflight_errors: [SystemVerification]
worker_ignore_preflight_errors: [SystemVerification]
"""

# Bare nodes, after the lines above; each control plane's hosts.yml entry also names its
# control_plane_advertise_address (kubeadm would take the default route's, and there is none).
BARE_INVENTORY_SETTINGS = """\
# Bare nodes: nothing of Kubernetes installed, no registry: node_prep installs it from the pin's bundle.
node_prep_source: bundle
node_prep_bundle_dir: {bundle_dir}
# /var/cache is the machine's, shared by every node: the archive cache goes where each node has its own disk.
node_prep_bundle_cache_dir: /var/lib/vipadm/images
# No default route (nothing leaves the lab): kube-vip's ARP interface cannot be the default route's.
kube_vip_interface: eth0
"""
