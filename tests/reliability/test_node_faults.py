# -*- coding: utf-8 -*-
"""Nodes failing during the bootstrap, then a run that finishes the job.

One lab (3 control planes, 1 worker); the tests run in file order and each starts from what the one
before left:
1. cp1 (the init host) powered off right after init, before the joins: the run stops with cp1 named
   unreachable and nobody joined; cp1 powered on again.
2. cp2 cut from the network for 20 s during its `kubeadm join`: the join fails, the run stops there.
3. cp3 powered off during its `kubeadm join` (cp2 is reset and joined first): the run fails, naming
   cp3 unreachable; cp3 powered on again.
4. The next run ends with a healthy HA control plane, initialized once.
Cost: about 5 min.
"""

from __future__ import annotations

import re
import threading
import time

import pytest

from reliability_lab import (SITE, assert_healthy_ha, kubeadm_calls, kubeadm_inits, prepare_nodes,
                             record_kubeadm_calls, run_playbook, wait_for)  # fmt: skip

pytestmark = [pytest.mark.lab, pytest.mark.reliability]

TASK = re.compile(r"^TASK \[(.*)\] \*")
ISOLATION = 20  # seconds cp2 stays cut off


@pytest.fixture(scope="module")
def lab(module_lab, tmp_path_factory):
    lab = module_lab(control_planes=3, workers=1)
    record_kubeadm_calls(lab)
    prepare_nodes(lab, tmp_path_factory.mktemp("prepare"))
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
    assert fault.done_at, run
    assert run.rc != 0, run
    assert "cp2 -> cp1" in run.output and "UNREACHABLE" in run.output, run
    assert "connect to host %s port 22" % lab.node("cp1").address in run.output, run
    for node in ("cp2", "cp3", "worker1"):
        assert kubeadm_calls(lab, node, "join") == [], "%s joined while cp1 was down" % node
    power_on(lab, "cp1")


def test_control_plane_cut_off_during_its_join(lab):
    """cp2 cut from the network for ISOLATION seconds during its join (a transient partition)."""
    timers = []

    def cut_cp2():
        lab.isolate("cp2")
        timers.append(threading.Timer(ISOLATION, lab.rejoin, args=("cp2",)))
        timers[-1].start()

    fault = Fault(lab, "Step 7: kubeadm join --control-plane", None, cut_cp2, joined_files("cp2"))
    run = run_playbook(lab, SITE, timeout=600, kill_when=fault)
    for timer in timers:
        timer.join()
    report("cp2 cut off for %d s during its join" % ISOLATION, run)
    assert fault.done_at, run
    assert run.rc != 0, run
    assert run.recap["cp2"]["failed"] + run.recap["cp2"]["unreachable"] == 1, run.recap
    assert kubeadm_calls(lab, "cp3", "join") == [], "cp3 joined after cp2's join failed:\n%r" % run


def test_control_plane_off_during_its_join(lab):
    """cp3 powered off during its join (cp2, left half-joined, is reset and joined first in this run)."""
    fault = Fault(lab, "Step 7: kubeadm join --control-plane", None, lambda: lab.stop("cp3"), joined_files("cp3"))
    run = run_playbook(lab, SITE, timeout=600, kill_when=fault)
    report("cp3 powered off during its join", run)
    assert fault.done_at, run
    assert run.rc != 0, run
    assert run.recap["cp3"]["unreachable"] == 1, run.recap
    assert "PLAY [Join the workers" not in run.output, run  # the run stops at the lost control plane
    power_on(lab, "cp3")


def report(what, run):
    print("\n%s: rc %s after %.1f s; recap %s" % (what, run.rc, run.elapsed, run.recap))
    print("\n".join(line[:400] for line in run.output.splitlines() if "[ERROR]" in line or "UNREACHABLE" in line))


def test_next_run_finishes_healthy(lab, tmp_path):
    wait_for(lambda: lab.exec("cp1", ["true"]).returncode == 0, 30, what="cp1 reachable")
    run = run_playbook(lab, SITE, timeout=500)
    print("\nfinal run after the node faults: rc %s, %.1f s" % (run.rc, run.elapsed))
    assert run.rc == 0, run
    assert len(kubeadm_inits(lab, "cp1")) == 1
    assert_healthy_ha(lab, tmp_path)
