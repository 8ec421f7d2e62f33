# -*- coding: utf-8 -*-
"""playbooks/site.yml and playbooks/reset.yml on a real lab of 2 control planes and 1 worker (the lab's
kubeadm, kubelet, containerd, etcd, control plane and kube-vip v1.2.3 built from upstream), prepared by
node_prep.yml: runs that stop half-way are finished by the next run, and reset takes the nodes back to
bare. It runs the release the lab's nodes run besides the default (1.36.3 beside 1.37.2, which Molecule
and the other suites run), so that CI bootstraps both.

1. The controller is killed right after `kubeadm init` (step 2).
2. The next run: the second control plane is powered off in the middle of its `kubeadm join`.
3. The run after: no second init (same CA, init task unchanged), the half-joined control plane reset and
   joined, kube-vip back on admin.conf everywhere, the kubelet enabled everywhere by init/join; then
   `--check` reports no change.
4. reset.yml refuses without -e reset_confirm=true (the cluster still answers), then takes every node
   back to bare (no kubeadm file, no kubelet, no container, the VIP on no interface); a second reset
   changes nothing and `site.yml --check` on the bare nodes passes its preflight.
Cost: one real lab (up in about 20 s) and 9 ansible-playbook runs, node_prep included: 119 s on 1.36.3 (quiet
machine: steps 1-3 52.7 s, after node_prep 81.6 s); earlier, on 1.36.3 as the default, 162 s in all on 2
shared cores (load average 5-11, another lab up); steps 1-3 took 74 s, the whole test after node_prep 120 s.
284 s at load average 17-26 (a 3+10 bench lab and two other labs up).
"""

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from lab.components import pins  # noqa: E402
from lab.tests.conftest import lab_factory  # noqa: E402,F401  (the fixture)

PINS = pins.load()
# The newest release the lab's nodes run other than the default (which Molecule and the other suites run).
OTHER_LAB_RELEASE = [version for version in PINS.lab_versions if version != PINS.default_kubernetes][-1]

pytestmark = pytest.mark.lab

RECAP = re.compile(r"^(\S+)\s*:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
CA = "/etc/kubernetes/pki/ca.crt"
MANIFEST = "/etc/kubernetes/manifests/kube-vip.yaml"
# What kubeadm leaves on a node that init or join touched; none of it may stay after reset.
KUBEADM_FILES = ["/etc/kubernetes/kubelet.conf", "/etc/kubernetes/admin.conf", CA,
                 "/etc/kubernetes/manifests/etcd.yaml", "/etc/kubernetes/manifests/kube-apiserver.yaml", MANIFEST]


def command(lab, playbook, *options):
    return [str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", str(lab.inventory_path),
            str(REPO / playbook), *options]


def environment():
    return dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                ANSIBLE_FORCE_COLOR="0", PYTHONUNBUFFERED="1")


def run(lab, playbook, *options, timeout=600):
    process = subprocess.run(command(lab, playbook, *options), cwd=str(REPO), env=environment(),
                             capture_output=True, text=True, timeout=timeout)
    recap = {m.group(1): dict(changed=int(m.group(3)), unreachable=int(m.group(4)), failed=int(m.group(5)))
             for m in RECAP.finditer(process.stdout)}
    return process, recap


def run_until(lab, playbook, stop, *options, timeout=300):
    """Run a playbook and kill it (SIGKILL, like a controller that dies) once ``stop(output)`` is true."""
    process = subprocess.Popen(command(lab, playbook, *options), cwd=str(REPO), env=environment(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    output, deadline = b"", time.monotonic() + timeout
    try:
        while not stop(output.decode(errors="replace")):
            assert time.monotonic() < deadline, "no stop point within %d s:\n%s" % (timeout, output[-4000:])
            ready, _, _ = select.select([process.stdout], [], [], 0.05)
            chunk = os.read(process.stdout.fileno(), 65536) if ready else b""
            if ready and not chunk:
                raise AssertionError("the playbook ended before the stop point:\n%s" % output[-4000:].decode())
            output += chunk
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: ansible-playbook and its ssh children
        process.wait(timeout=30)
        process.stdout.close()
    return output.decode(errors="replace")


def text(lab, node, path):
    target = lab.node_file(node, path)
    return target.read_text() if target.exists() else None


def etcd_members(lab, node):
    result = lab.exec(node, ["sh", "-c", "ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 "
                                         "--cacert=/etc/kubernetes/pki/etcd/ca.crt "
                                         "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt "
                                         "--key=/etc/kubernetes/pki/etcd/healthcheck-client.key member list"],
                      check=False, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    return sorted(line.split(", ")[2] for line in result.stdout.splitlines() if ", started, " in line)


def assert_ok(process, recap, nodes):
    assert process.returncode == 0, process.stdout[-5000:] + process.stderr[-2000:]
    assert all(recap[node]["failed"] == 0 and recap[node]["unreachable"] == 0 for node in nodes), recap


def kubelet_enabled(lab, node):
    return lab.exec(node, ["systemctl", "is-enabled", "kubelet"], check=False).returncode == 0


def test_resume_rejoin_and_reset(lab_factory):  # noqa: F811
    lab = lab_factory(control_planes=2, workers=1, runtime="real", kubernetes_version=OTHER_LAB_RELEASE)
    nodes = [node.name for node in lab.nodes]
    cp1, cp2, worker = nodes
    # node_prep without managing the units: the kubelet stays disabled, so that the init and join modules are
    # what enables it (the lab's inventory lets node_prep enable it, as with packages).
    process, recap = run(lab, "playbooks/node_prep.yml", "-e", "node_prep_manage_services=false")
    assert_ok(process, recap, nodes)
    assert [kubelet_enabled(lab, node) for node in nodes] == [False] * len(nodes)
    started = time.monotonic()

    # 1. The controller dies right after kubeadm init: the next task (waiting for the VIP) has begun.
    output = run_until(lab, "playbooks/site.yml",
                       lambda out: "Steps 3-6: the API server answers through the VIP" in out)
    assert "Step 2: kubeadm init" in output
    ca = text(lab, cp1, CA)
    assert ca and "super-admin.conf" in text(lab, cp1, MANIFEST)
    assert text(lab, cp2, CA) is None and text(lab, worker, "/etc/kubernetes/kubelet.conf") is None

    # 2. The next run: cp2 is powered off in the middle of its kubeadm join, then on again.
    def power_off_cp2_while_joining(out):
        # kubeadm join wrote its first files (the downloaded certificates): power off now.
        if "Step 7: kubeadm join --control-plane" in out and lab.node_file(cp2, CA).exists():
            lab.stop(cp2)
            return True
        return False
    run_until(lab, "playbooks/site.yml", power_off_cp2_while_joining)
    assert text(lab, cp2, "/etc/kubernetes/manifests/etcd.yaml") is None, "cp2 finished its join before the power-off"
    lab.start(cp2)

    # 3. The run after that: no second init, cp2 reset and joined, everything finished.
    process, recap = run(lab, "playbooks/site.yml")
    assert_ok(process, recap, nodes)
    assert text(lab, cp1, CA) == ca, "the cluster was initialized a second time"
    init = re.search(r"TASK \[vipadm\.kubeadm\.control_plane : Step 2: kubeadm init[^\n]*\n(\w+): \[cp1\]",
                     process.stdout)
    assert init and init.group(1) == "ok", "the resumed run ran kubeadm init again"
    assert re.search(r"TASK \[vipadm\.kubeadm\.control_plane : Reset the remains of a join that did not finish\] "
                     r"\**\nchanged: \[cp2\]", process.stdout), process.stdout[-5000:]
    assert etcd_members(lab, cp1) == [cp1, cp2]
    for node in (cp1, cp2):
        manifest = text(lab, node, MANIFEST)
        assert "path: /etc/kubernetes/admin.conf" in manifest and "super-admin.conf" not in manifest, node
    assert text(lab, cp2, CA) == ca and text(lab, worker, CA) == ca
    # Enabled by the init and join modules (kubeadm starts the kubelet, never enables it).
    assert [kubelet_enabled(lab, node) for node in nodes] == [True] * len(nodes)
    resumed = time.monotonic() - started

    # Check mode on the finished cluster: no change.
    process, recap = run(lab, "playbooks/site.yml", "--check")
    assert_ok(process, recap, nodes)
    assert all(recap[node]["changed"] == 0 for node in nodes), recap

    # 4. reset.yml refuses without confirmation and changes nothing; with it, every node is bare (the lab's
    # pod network agent, like a CNI's DaemonSet pod, writes nothing into a node that was reset).
    process, recap = run(lab, "playbooks/reset.yml")
    assert process.returncode != 0
    assert "Run it again with -e reset_confirm=true" in process.stdout
    assert all(recap[node]["changed"] == 0 for node in recap), recap
    assert text(lab, cp1, CA) == ca and etcd_members(lab, cp1) == [cp1, cp2]

    process, recap = run(lab, "playbooks/reset.yml", "-e", "reset_confirm=true")
    assert_ok(process, recap, nodes)
    for node in nodes:
        assert [path for path in KUBEADM_FILES if lab.node_file(node, path).exists()] == [], node
        etcd_data = lab.node_file(node, "/var/lib/etcd")
        assert not etcd_data.exists() or not any(etcd_data.iterdir()), node
        # Nothing of the cluster runs any more: no kubelet, no container, the VIP on no interface.
        assert lab.exec(node, ["systemctl", "is-active", "kubelet"], check=False).stdout.strip() != "active", node
        assert lab.exec(node, ["ctr", "-n", "k8s.io", "containers", "ls", "-q"]).stdout.split() == [], node
        assert " %s/" % lab.vip not in lab.exec(node, ["ip", "-o", "-4", "addr", "show"]).stdout, node
    process, recap = run(lab, "playbooks/reset.yml", "-e", "reset_confirm=true")
    assert_ok(process, recap, nodes)
    assert all(recap[node]["changed"] == 0 for node in nodes), recap
    # Bare again: site.yml --check passes its preflight (no VIP answers) and would initialize and join again.
    process, recap = run(lab, "playbooks/site.yml", "--check")
    assert_ok(process, recap, nodes)
    assert all(recap[node]["changed"] > 0 for node in nodes), recap
    print("site.yml: killed after init and resumed in %.1f s; whole test %.1f s" % (resumed,
                                                                                   time.monotonic() - started))
