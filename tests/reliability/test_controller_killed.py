# -*- coding: utf-8 -*-
"""The controller killed after each of the eight steps in turn, then a run that finishes the job.

One lab (3 control planes, 1 worker), one chain of runs: run k is killed (SIGKILL to ansible-playbook
and its workers, as a crash of the controller) right after step k; run k+1 starts from what run k left
and must get past it; a last run must end with a healthy HA control plane and no cluster initialized
twice. Steps 1, 2+6, 7 and 8 are Ansible tasks, so their kill point is the task's result line; steps
3-5 happen inside `kubeadm init` on the node, so their kill point is what the node shows (3: the kubelet
runs with the control plane manifests; 4: the VIP is on cp1; 5: the API answers through the VIP).
One more kill point sits inside step 7: right after cp2's join credentials were made on a fast clock;
the token and the certificate key then expire before the next run, which must make fresh ones.
Cost: about 3.5 min.
"""

from __future__ import annotations

import json
import re
import socket
import time

import pytest

from reliability_lab import (SITE, assert_healthy_ha, file_digest, join_configs, kubeadm_calls, prepare_nodes, record_kubeadm_calls,
                             run_playbook, vip_holders, wait_for)  # fmt: skip

pytestmark = [pytest.mark.lab, pytest.mark.reliability]

TASK = re.compile(r"^TASK \[(.*)\] \*")
PLAY = re.compile(r"^PLAY \[(.*)\] \*")
RESULT = re.compile(r"^(ok|changed): \[(\S+?)[\] ]")
TOKEN_TTL = re.compile(r"^([a-z0-9]{6}\.[a-z0-9]{16})\s+(\S+)", re.M)
FAST_CLOCK = "/root/reliability-fast-clock.json"
# On the fast clock a 15 min token lives 4.5 s and the 2 h certificate key (its Secret) 36 s.
FAST_TIME_SCALE = 0.005


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
            and lab.exec("cp1", ["systemctl", "is-active", "kubelet"], check=False).returncode == 0)


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
    # Credentials made on a fast clock, then left to expire before the next run (see expire_between_runs).
    ("after the join credentials for cp2 (step 7 begun), which then expire",
     after_task("Step 7", "Step 7: fresh join credentials", "cp2")),
    ("after step 7 for cp2 (joined with fresh credentials, cp3 not yet)",
     after_task("Step 7", "Step 7: kubeadm join", "cp2")),
    ("after step 8 on cp2 (kube-vip manifest, cp3 and cp1 not yet)",
     after_task("Step 8", "kube_vip : Write the kube-vip manifest", "cp2")),
]


def install_fast_clock(lab):
    """cp1's kubeadm makes tokens and uploads certificates on a clock 1/FAST_TIME_SCALE times faster while
    FAST_CLOCK exists, as if hours passed after them (the simulator's time_scale, for those commands only)."""
    config = json.loads(lab.exec("cp1", ["sh", "-c", "cat \"$(sed -n 's/.*LAB_SIM_CONFIG=\\([^ ]*\\).*/\\1/p' "
                                                     "/usr/local/bin/kubeadm)\""], check=True).stdout)
    config["time_scale"] = FAST_TIME_SCALE
    lab.exec("cp1", ["sh", "-c", "cat > %s.off" % FAST_CLOCK], input=json.dumps(config), check=True)
    wrapper = lab.exec("cp1", ["cat", "/usr/local/bin/kubeadm"], check=True).stdout
    switch = ('[ -e %s ] && case "$1 $2 $3" in "token create"*|"init phase upload-certs") '
              'export LAB_SIM_CONFIG=%s;; esac\n' % (FAST_CLOCK, FAST_CLOCK))
    wrapper = wrapper.replace("exec ", switch + "exec ", 1)
    lab.exec("cp1", ["sh", "-c", "cat > /usr/local/bin/kubeadm.new && chmod 755 /usr/local/bin/kubeadm.new && "
                                 "mv /usr/local/bin/kubeadm.new /usr/local/bin/kubeadm"], input=wrapper, check=True)


def use_fast_clock(lab, on):
    source, target = (FAST_CLOCK + ".off", FAST_CLOCK) if on else (FAST_CLOCK, FAST_CLOCK + ".off")
    lab.exec("cp1", ["mv", source, target], check=True)


def live_tokens(lab):
    """{token: TTL as kubeadm token list prints it} of the tokens that have not expired."""
    return dict(TOKEN_TTL.findall(lab.exec("cp1", ["kubeadm", "token", "list"], check=True).stdout))


def certificate_key_secret_exists(lab):
    return lab.exec("cp1", ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "-n", "kube-system", "get",
                            "secret", "kubeadm-certs"], check=False).returncode == 0  # fmt: skip


def fast_clock_from_credentials(condition):
    def check(progress, result, lab):
        if not result and "Step 7: fresh join credentials" in progress.task and not check.started:
            check.started = True
            use_fast_clock(lab, True)
        return condition(progress, result, lab)
    check.started = False
    return check


@pytest.fixture(scope="module")
def lab(module_lab, tmp_path_factory):
    lab = module_lab(control_planes=3, workers=1)
    record_kubeadm_calls(lab)
    prepare_nodes(lab, tmp_path_factory.mktemp("prepare"))
    return lab


def test_killed_after_each_step_then_finished(lab, tmp_path):
    report, ca_after_init, expired = [], None, set()
    for label, condition in KILL_POINTS:
        progress = Progress()
        expiring = "which then expire" in label
        if expiring:
            install_fast_clock(lab)
            tokens_before = set(live_tokens(lab))
            # Only cp2's join credentials go on the fast clock: it starts at their task's header.
            condition = fast_clock_from_credentials(condition)

        def kill_when(line, _lines, progress=progress, condition=condition):
            result = progress.feed(line)
            return label if condition(progress, result, lab) else None

        run = run_playbook(lab, SITE, timeout=400, kill_when=kill_when)
        report.append("%s: killed after %.1f s; cp1 kubeadm so far: %s" % (label, run.elapsed, ", ".join(
            c.split(" --")[0] for c in kubeadm_calls(lab, "cp1") if not c.startswith("init phase"))))
        assert run.killed_at == label, "the run did not reach the kill point %r:\n%r" % (label, run)
        if "kubeadm init finished" in label:
            ca_after_init = file_digest(lab, "cp1", "/etc/kubernetes/pki/ca.crt")
        if expiring:
            use_fast_clock(lab, False)
            # New tokens of this run on the fast clock (TTL in seconds now); others (init's, 24 h) stay.
            expired = {t for t, ttl in live_tokens(lab).items() if t not in tokens_before and ttl.endswith("s")}
            assert expired, "the run made no join credentials on the fast clock: %s" % live_tokens(lab)
            started = time.monotonic()
            wait_for(lambda: not (set(live_tokens(lab)) & expired) and not certificate_key_secret_exists(lab), 90,
                     interval=1, what="cp2's token and the certificate key to expire")
            report.append("  token %s and the certificate key expired %.1f s later" % (
                ", ".join(t.split(".")[0] for t in expired), time.monotonic() - started))
        if "joined with fresh credentials" in label:
            join_config = join_configs(lab, "cp2")[-1]
            assert not any(token in join_config for token in expired), "cp2 joined with an expired token"
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
