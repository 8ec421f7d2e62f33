"""Real lab nodes: what a node has before vipadm runs, power off/on of a bootstrapped control plane
(containerd and the kubelet start again from its disk, the static Pods come back, the VIP answers),
and `down` leaving no process, mount, cgroup, link or namespace behind."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import yaml

from lab.nodes import real as realnode
from lab.slices import claim_slice
from lab.core import Lab
from tests.integration.test_real_lab import livez, wait_for
from tests.integration.test_site import assert_ok, run

pytestmark = pytest.mark.lab


def _mounts_under(path: Path) -> list[str]:
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(path) in line]


def _netns_inodes(lab: Lab) -> set[int]:
    return {os.stat(f"/run/netns/{netns}").st_ino for netns in [p.netns for p in lab.plan.nodes] + [lab.plan.dns_netns]}


def _processes_in(inodes: set[int]) -> list[int]:
    """PIDs of the machine whose network namespace is one of inodes."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.stat(entry / "ns" / "net").st_ino in inodes:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_real_node_power_cycle_and_a_clean_down(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    claim, name, subnet, state_dir = claim_slice(1, 0)
    lab = Lab(name=name, state_dir=state_dir, subnet=subnet, control_planes=1, workers=0, runtime="real")
    inodes: set[int] = set()
    try:
        lab.up()
        inodes = _netns_inodes(lab)
        # A fresh node: packages, the pinned binaries, images in containerd, nothing of Kubernetes yet.
        out = lab.exec("cp1", ["sh", "-c", "kubeadm version -o short; systemctl is-active containerd; "
                                           "systemctl is-enabled kubelet; ls /etc/kubernetes/manifests | wc -l; "
                                           "ctr -n k8s.io images ls -q | grep -c registry.k8s.io; cat /etc/resolv.conf"],
                       check=False).stdout.split()  # fmt: skip
        assert out[:5] == [f"v{lab.kubernetes_version}", "active", "disabled", "0", "7"], out
        assert out[5:] == ["nameserver", lab.plan.dns_address]
        # The images came from the containerd seed: the node's blobs are hard links to it, its database its own.
        containerd_root = state_dir / "nodes" / "cp1" / "containerd"
        blobs = list((containerd_root / "io.containerd.content.v1.content" / "blobs" / "sha256").iterdir())
        assert len(blobs) >= 7 and all(blob.stat().st_nlink >= 2 for blob in blobs)
        assert (containerd_root / "io.containerd.metadata.v1.bolt" / "meta.db").stat().st_nlink == 1
        resolved = lab.exec("cp1", ["getent", "hosts", "controller"], check=False).stdout.split()  # DNS only
        assert resolved[:1] == [lab.controller_address]
        assert lab.exec("cp1", ["getent", "hosts", "registry.k8s.io"], check=False).returncode != 0

        names = ["cp1"]
        assert_ok(*run(lab, "playbooks/node_prep.yml"), names)
        assert_ok(*run(lab, "playbooks/site.yml"), names)
        ca = lab.node_file("cp1", "/etc/kubernetes/pki/ca.crt").read_text()
        assert livez(lab.vip, ca)

        lab.stop("cp1")
        assert not livez(lab.vip, ca)
        started = time.monotonic()
        lab.start("cp1")
        inodes |= _netns_inodes(lab)  # power on = a new network namespace
        wait_for(lambda: livez(lab.vip, ca), 180, "the VIP answering after cp1 was powered on")
        back = time.monotonic() - started
        pods = json.loads(lab.exec("cp1", ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "get", "pods",
                                           "-n", "kube-system", "-o", "json"]).stdout)["items"]  # fmt: skip
        static = {p["metadata"]["name"].rsplit("-", 1)[0] for p in pods if p["spec"].get("nodeName") == "cp1"}
        assert {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-vip"} <= static
        print(f"real node cp1 powered on: the VIP answered again after {back:.1f} s")
    finally:
        lab.down()
    cgroup = realnode.cgroup_root(lab.plan.node("cp1").netns)
    assert [d for d in realnode.cgroup_dirs(cgroup) if d.exists()] == []
    assert len(inodes) == 3 and _processes_in(inodes) == []
    assert _mounts_under(state_dir) == []
    assert not Path("/sys/class/net", lab.plan.bridge).exists()
    assert not Path("/sys/class/net", lab.plan.dns_veth).exists()
    assert not any(Path("/run/netns", n).exists() for n in [p.netns for p in lab.plan.nodes] + [lab.plan.dns_netns])
    assert not (state_dir / "run").exists()
    shutil.rmtree(state_dir, ignore_errors=True)
    claim.unlink(missing_ok=True)


def test_a_bare_node_has_no_kubernetes_and_takes_the_bundle_without_a_registry():
    """A bare node (node software "bare") is an air-gapped machine with Debian's packages only: no kubeadm,
    kubelet or kubectl, no kubelet unit, no image, containerd enabled and answering, no route out. The pin's
    bundle (written by `up`, named by the inventory) imports there with `ctr -n k8s.io images import`, as
    node_prep does, and containerd's log shows no CRI pull; a pull asked for on purpose is seen in that log,
    so the empty list is a proof; a power cycle keeps it bare. Measured on 2 shared cores: 10-13 s in all
    (up 0.8-1.0 s, the 8 images imported in 7-9 s, down 0.2-1.9 s)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    claim, name, subnet, state_dir = claim_slice(1, 0)
    lab = Lab(name=name, state_dir=state_dir, subnet=subnet, control_planes=1, workers=0, node_software="bare")
    started = time.monotonic()
    try:
        lab.up()
        up = time.monotonic() - started

        def sh(command: str):
            return lab.exec("cp1", ["sh", "-c", command], check=False)

        assert sh("command -v kubeadm kubelet kubectl").stdout == ""
        assert sh("ls -A /usr/local/bin /etc/kubernetes").stdout.split() == ["/etc/kubernetes:", "/usr/local/bin:"]
        assert sh("systemctl show -p LoadState kubelet").stdout.strip() == "LoadState=not-found"
        assert sh("ls /etc/systemd/system | grep -c kubelet").stdout.strip() == "0"
        assert sh("systemctl is-enabled containerd; systemctl is-active containerd").stdout.split() == ["enabled", "active"]
        assert sh("ctr version").returncode == 0
        assert sh("ctr -n k8s.io images ls -q").stdout == ""
        assert "default" not in sh("ip -4 route").stdout
        out = sh("python3 -c \"import socket; socket.create_connection(('203.0.113.1', 443), timeout=5)\"")
        assert "Network is unreachable" in out.stderr, out.stderr
        group_vars = yaml.safe_load((lab.inventory_path / "group_vars" / "all.yml").read_text())
        assert group_vars["node_prep_source"] == "bundle" and group_vars["node_prep_bundle_dir"] == str(lab.bundle_dir)

        # What node_prep does: the bundle's files on the node (/tmp is shared with it), its images imported.
        manifest = json.loads((lab.bundle_dir / "bundle.json").read_text())
        assert manifest["kubernetes_version"] == lab.kubernetes_version
        on_node = state_dir / "bundle"
        (on_node / "images").mkdir(parents=True)
        (on_node / "bin").mkdir()
        for entry in manifest["files"]:
            realnode.link_or_copy(lab.bundle_dir / entry["path"], on_node / entry["path"])
        importing = time.monotonic()
        references = set()
        for entry in (e for e in manifest["files"] if e["kind"] == "image"):
            sh(f"ctr -n k8s.io images import {on_node / entry['path']}").check_returncode()
            references |= set(entry["references"])
        imported = time.monotonic() - importing
        listed = {line for line in sh("ctr -n k8s.io images ls -q").stdout.split() if not line.startswith("sha256:")}
        assert listed == references and len(references) == 8, listed
        assert lab.image_pulls("cp1") == []

        # The proof sees a pull: the bundle's kubeadm asks containerd (CRI) for an image of no registry.
        pull = sh(f"{on_node}/bin/kubeadm config images pull --kubernetes-version v{lab.kubernetes_version} "
                  "--image-repository registry.invalid --cri-socket unix:///run/containerd/containerd.sock")  # fmt: skip
        assert pull.returncode != 0 and "no such host" in pull.stderr, pull.stderr
        pulls = lab.image_pulls("cp1")
        assert pulls and set(pulls) == {f"registry.invalid/kube-apiserver:v{lab.kubernetes_version}"}, pulls

        # A power cycle by a later command (the lab as lab.json has it): still bare, still no route out.
        again = Lab.load(state_dir)
        assert (again.node_software, again.bundle_dir) == ("bare", lab.bundle_dir)
        again.stop("cp1")
        again.start("cp1")
        assert "default" not in sh("ip -4 route").stdout
        assert sh("systemctl is-active containerd").stdout.strip() == "active"
        realnode.wait_containerd(lambda command: lab._exec_argv("cp1", command), "cp1")
        assert sh("ctr -n k8s.io images ls -q | grep -vc ^sha256:").stdout.strip() == "8"
        assert lab.image_pulls("cp1") == pulls  # the log is kept across boots
    finally:
        stopping = time.monotonic()
        lab.down()
        down = time.monotonic() - stopping
    shutil.rmtree(state_dir, ignore_errors=True)
    claim.unlink(missing_ok=True)
    print(f"bare node: up {up:.1f} s, images imported in {imported:.1f} s, down {down:.1f} s, "
          f"{time.monotonic() - started:.1f} s in all")
