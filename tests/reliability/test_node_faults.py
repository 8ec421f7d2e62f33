# -*- coding: utf-8 -*-
"""Nodes failing during the bootstrap, then a run that finishes the job.

One real lab (3 control planes, 1 worker); the tests run in file order and each starts from what the one
before left:
1. cp1 (the init host) powered off right after init, before the joins: the run stops with cp1 named
   unreachable and nobody joined; cp1 powered on again.
2. The next run, started as soon as cp1 is back (its kubelet is still starting etcd and the API server),
   on cp1 and cp2 only: cp2 is cut from the network for 20 s during its `kubeadm join`. The real
   kubeadm retries through the partition: the join completes and the run goes on (the simulator's join
   failed instead).
3. cp3 powered off during its `kubeadm join`: the run fails, naming cp3 unreachable, and stops there
   (the workers' play never starts); cp3 powered on again.
4. The next run resets the half-joined cp3, joins it and the worker, and ends with a healthy HA control
   plane, initialized once.
Cost: about 6 min.
"""

from __future__ import annotations

import re
import threading
import time

import pytest

from reliability_lab import (ETCDCTL, SITE, assert_healthy_ha, kubeadm_calls, kubeadm_inits, prepare_nodes,
                             record_kubeadm_calls, run_playbook, wait_for, write_inventory)  # fmt: skip

pytestmark = [pytest.mark.lab, pytest.mark.reliability]

TASK = re.compile(r"^TASK \[(.*)\] \*")
ISOLATION = 20  # seconds cp2 stays cut off


@pytest.fixture(scope="module")
def lab(module_lab, tmp_path_factory):
    lab = module_lab(control_planes=3, workers=1)
    record_kubeadm_calls(lab)
    prepare_nodes(lab)
    return lab


def power_on(lab, node):
    lab.start(node)  # a fresh network stack, as a reboot: no VIP left over from before


class Fault:
    """Acts once on the lab when the run shows a moment: the header of a task of a host (Ansible
    prints `TASK [...]` then results; for serial plays the host is known from the play's hosts), plus
    an optional node condition polled while that task runs."""

    def __init__(self, lab, task_part, host, action, node_condition=None):
        self.lab, self.task_part, self.host, self.action = lab, task_part, host, action
        self.node_condition = node_condition
        self.in_task, self.done_at = False, None

    def __call__(self, line, lines):
        if self.done_at:
            return None
        if line is not None and TASK.match(line):
            self.in_task = self.task_part in line and (self.host is None or self.host in line)
        if self.in_task and (self.node_condition is None or self.node_condition(self.lab)):
            self.done_at = time.monotonic()
            self.action()
        return None  # the controller keeps running


def joined_files(node):
    def condition(lab):
        return lab.node_file(node, "/etc/kubernetes/pki/ca.crt").exists()
    return condition


def test_init_host_off_after_init_stops_the_joins(lab):
    # The first task of the join play: init reported success, no join started.
    fault = Fault(lab, "Step 7: fresh join credentials, made right before this join", None, lambda: lab.stop("cp1"))
    run = run_playbook(lab, SITE, timeout=400, kill_when=fault)
    report("cp1 powered off before the joins", run)
    assert fault.done_at, run
    assert run.rc != 0, run
    assert "cp2 -> cp1" in run.output and "UNREACHABLE" in run.output, run
    assert "connect to host %s port 22" % lab.node("cp1").address in run.output, run
    for node in ("cp2", "cp3", "worker1"):
        assert kubeadm_calls(lab, node, "join") == [], "%s joined while cp1 was down" % node
    power_on(lab, "cp1")


def task_time(run, task_part, host):
    """Seconds from the header of the first task whose name contains task_part to host's result."""
    start = run.at(r"^TASK \[.*%s" % re.escape(task_part))
    lines = run.output.splitlines()
    index = next(i for i, line in enumerate(lines) if line.startswith("TASK [") and task_part in line)
    end = next(t for t, line in list(zip(run.times, lines))[index:] if re.match(r"^(ok|changed|fatal): \[%s[\] ]" % host, line))
    return end - start


def test_control_plane_cut_off_during_its_join(lab, tmp_path):
    """Right after cp1 is back: cp2 cut from the network for ISOLATION seconds during its join (a
    transient partition). Only cp1 and cp2 take part, so cp3 and worker1 stay bare for the next test."""
    timers = []

    def cut_cp2():
        lab.isolate("cp2")
        timers.append(threading.Timer(ISOLATION, lab.rejoin, args=("cp2",)))
        timers[-1].start()

    inventory = write_inventory(tmp_path / "inventory", lab, {"control_plane": ["cp1", "cp2"], "workers": []})
    fault = Fault(lab, "Step 7: kubeadm join --control-plane", None, cut_cp2, joined_files("cp2"))
    run = run_playbook(lab, SITE, inventory=inventory, timeout=600, kill_when=fault)
    for timer in timers:
        timer.join()
    report("cp2 cut off for %d s during its join" % ISOLATION, run)
    # cp1 was powered on just before: the init host's check of its own init waited for its API server.
    print("  cp1's own API server waited for %.1f s; cp2's join (cut off %d s) took %.1f s"
          % (task_time(run, "Reset this node if its earlier kubeadm init", "cp1"), ISOLATION,
             task_time(run, "Step 7: kubeadm join --control-plane", "cp2")))
    assert fault.done_at, run
    assert "PLAY [Step 7" in run.output and "Reset this node if its earlier kubeadm init" in run.output, run
    # The real kubeadm join retries its API and etcd calls through a 20 s partition and completes.
    assert run.rc == 0, run
    assert len(kubeadm_calls(lab, "cp2", "join")) == 1, kubeadm_calls(lab, "cp2")
    members = lab.exec("cp1", ["sh", "-c", ETCDCTL + " member list"], check=True).stdout
    assert sorted(line.split(", ")[2] for line in members.splitlines() if ", started, " in line) == ["cp1", "cp2"], members
    assert kubeadm_calls(lab, "cp3") == [] and kubeadm_calls(lab, "worker1") == []


def test_control_plane_off_during_its_join(lab):
    """cp3 powered off during its join: the serial join play stops at the lost control plane."""
    fault = Fault(lab, "Step 7: kubeadm join --control-plane", None, lambda: lab.stop("cp3"), joined_files("cp3"))
    run = run_playbook(lab, SITE, timeout=600, kill_when=fault)
    report("cp3 powered off during its join", run)
    members = lab.exec("cp1", ["sh", "-c", ETCDCTL + " member list"], check=True).stdout
    print("  etcd members after the power-off: %s" % "; ".join(line.split(", ", 1)[1] for line in members.splitlines()))
    assert fault.done_at, run
    assert run.rc != 0, run
    assert run.recap["cp3"]["unreachable"] == 1, run.recap
    assert "PLAY [Join the workers" not in run.output, run  # the run stops at the lost control plane
    assert kubeadm_calls(lab, "worker1", "join") == []
    power_on(lab, "cp3")


def report(what, run):
    print("\n%s: rc %s after %.1f s; recap %s" % (what, run.rc, run.elapsed, run.recap))
    print("\n".join(line[:400] for line in run.output.splitlines() if "[ERROR]" in line or "UNREACHABLE" in line))


def test_next_run_finishes_healthy(lab, tmp_path):
    wait_for(lambda: lab.exec("cp3", ["true"]).returncode == 0, 30, what="cp3 reachable")
    run = run_playbook(lab, SITE, timeout=500)
    print("\nfinal run after the node faults: rc %s, %.1f s; kubeadm on cp3: %s"
          % (run.rc, run.elapsed, [c.split(" --")[0] for c in kubeadm_calls(lab, "cp3") if c.split(" ")[0] in ("join", "reset")]))
    assert run.rc == 0, run
    assert len(kubeadm_inits(lab, "cp1")) == 1
    assert [c.split(" ")[0] for c in kubeadm_calls(lab, "cp3") if c.split(" ")[0] in ("join", "reset")] == ["join", "reset", "join"]
    assert_healthy_ha(lab, tmp_path)
