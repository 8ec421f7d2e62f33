"""Real lab nodes: what a node has before vipadm runs, power off/on of a bootstrapped control plane
(containerd and the kubelet start again from its disk, the static Pods come back, the VIP answers),
and `down` leaving no process, mount, cgroup, link or namespace behind."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

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
    claim.unlink(missing_ok=True)
