# -*- coding: utf-8 -*-
"""The controller killed after each of the eight steps in turn, then a run that finishes the job.

One lab (3 control planes, 1 worker), one chain of runs: run k is killed (SIGKILL to ansible-playbook
and its workers, as a crash of the controller) right after step k; run k+1 starts from what run k left
and must get past it; a last run must end with a healthy HA control plane and no cluster initialized
twice. Steps 1, 2+6, 7 and 8 are Ansible tasks, so their kill point is the task's result line; steps
3-5 happen inside `kubeadm init` on the node, so their kill point is what the node shows (3: the kubelet
runs with the control plane manifests; 4: the VIP is on cp1; 5: the API answers through the VIP).
Cost: about 3 min.
"""

from __future__ import annotations

import re
import socket

import pytest

from reliability_lab import (SITE, assert_healthy_ha, file_digest, kubeadm_calls, prepare_nodes, record_kubeadm_calls,
                             run_playbook, vip_holders)  # fmt: skip

pytestmark = [pytest.mark.lab, pytest.mark.reliability]

TASK = re.compile(r"^TASK \[(.*)\] \*")
PLAY = re.compile(r"^PLAY \[(.*)\] \*")
RESULT = re.compile(r"^(ok|changed): \[(\S+?)\]")


class Progress:
    """Follows the run's output: the current play and task."""

    def __init__(self):
        self.play = self.task = ""

    def feed(self, line):
        if line is None:
            return None
        if PLAY.match(line):
            self.play, self.task = PLAY.match(line).group(1), ""
        elif TASK.match(line):
            self.task = TASK.match(line).group(1)
        return RESULT.match(line)


def after_task(play_part, task_part, host):
    """Kill when `host` reports the result of the task (in the play) whose names contain the parts."""
    def check(progress, result, lab):
        return bool(result and result.group(2) == host and play_part in progress.play and task_part in progress.task)
    return check


def during_init(node_condition):
    """Kill while kubeadm init runs, as soon as the node shows node_condition(lab)."""
    def check(progress, result, lab):
        return "Step 2: kubeadm init" in progress.task and node_condition(lab)
    return check


def kubelet_runs_control_plane(lab):
    return (lab.node_file("cp1", "/etc/kubernetes/manifests/kube-apiserver.yaml").exists()
            and lab.exec("cp1", ["systemctl", "is-active", "kubelet"]).returncode == 0)


def vip_on_cp1(lab):
    return vip_holders(lab) == ["cp1"]


def api_answers_through_vip(lab):
    try:
        with socket.create_connection((lab.vip, 6443), timeout=0.3):
            return True
    except OSError:
        return False


KILL_POINTS = [
    ("after step 1 (kube-vip manifest with super-admin.conf)",
     after_task("Steps 1-6", "kube_vip : Write the kube-vip manifest", "cp1")),
    # Step 2 (kubeadm init starts) and step 3 (the kubelet runs the manifests) are one moment seen from outside.
    ("after steps 2-3 (kubeadm init running, the kubelet runs the control plane manifests)",
     during_init(kubelet_runs_control_plane)),
    ("after step 4 (kube-vip announces the VIP on cp1)", during_init(vip_on_cp1)),
    ("after step 5 (the API answers through the VIP)", during_init(api_answers_through_vip)),
    ("after step 6 (kubeadm init finished)", after_task("Steps 1-6", "Step 2: kubeadm init", "cp1")),
    ("after step 6 (the VIP answers the init host)", after_task("Steps 1-6", "Steps 3-6", "cp1")),
    ("after step 7 for cp2 (joined, cp3 not yet)", after_task("Step 7", "Step 7: kubeadm join", "cp2")),
    ("after step 8 on cp2 (kube-vip manifest, cp3 and cp1 not yet)",
     after_task("Step 8", "kube_vip : Write the kube-vip manifest", "cp2")),
]


@pytest.fixture(scope="module")
def lab(module_lab, tmp_path_factory):
    lab = module_lab(control_planes=3, workers=1)
    record_kubeadm_calls(lab)
    prepare_nodes(lab, tmp_path_factory.mktemp("prepare"))
    return lab


def test_killed_after_each_step_then_finished(lab, tmp_path):
    report, ca_after_init = [], None
    for label, condition in KILL_POINTS:
        progress = Progress()

        def kill_when(line, _lines, progress=progress, condition=condition):
            result = progress.feed(line)
            return label if condition(progress, result, lab) else None

        run = run_playbook(lab, SITE, timeout=400, kill_when=kill_when)
        report.append("%s: killed after %.1f s; cp1 kubeadm so far: %s" % (label, run.elapsed, ", ".join(
            c.split(" --")[0] for c in kubeadm_calls(lab, "cp1") if not c.startswith("init phase"))))
        assert run.killed_at == label, "the run did not reach the kill point %r:\n%r" % (label, run)
        if "kubeadm init finished" in label:
            ca_after_init = file_digest(lab, "cp1", "/etc/kubernetes/pki/ca.crt")
    final = run_playbook(lab, SITE, timeout=400)
    print("\n" + "\n".join(report) + "\nfinal run: rc %s, %.1f s" % (final.rc, final.elapsed))
    assert final.rc == 0, final
    # An init cut short (steps 3-5) is reset and done again while no cluster exists; once init finished
    # (step 6) the cluster is never initialized again: its CA stays the same to the end.
    calls = [c.split(" ")[0] for c in kubeadm_calls(lab, "cp1")
             if c.split(" ")[0] in ("init", "reset") and not c.startswith("init phase")]
    for previous, current in zip(calls, calls[1:]):
        assert not (previous == "init" and current == "init"), "init twice without a reset: %s" % calls
    assert ca_after_init is not None
    assert file_digest(lab, "cp1", "/etc/kubernetes/pki/ca.crt") == ca_after_init, "the cluster was initialized again"
    assert_healthy_ha(lab, tmp_path, max_inits=calls.count("init"))
    assert calls.count("init") <= 4, calls  # at most one per kill point inside kubeadm init, plus the first
