# -*- coding: utf-8 -*-
"""The controller killed after each of the eight steps in turn, then a run that finishes the job.

One real lab (2 control planes: the chain needs one join and one step 8 on a joined node, a third adds
nothing), one chain of runs: run k is killed (SIGKILL to ansible-playbook and its workers, as a crash of
the controller) right after step k; run k+1 starts from what run k left and must get past it; a last run
must end with a healthy HA control plane and no cluster initialized twice. Steps 1, 2+6, 7 and 8 are
Ansible tasks, so their kill point is the task's result line; steps 3-5 happen inside `kubeadm init` on
the node, so their kill point is what the node shows (3: the kubelet runs with the control plane
manifests; 4: the VIP is on cp1; 5: the API answers through the VIP).
One more kill point sits inside step 7: right after cp2's join credentials were made. Before the next
run they expire as they do in a cluster: the token cleaner deletes an expired bootstrap token's Secret,
and the garbage collector then deletes the kubeadm-certs Secret, whose owner is the certificate key's
2 h proxy token. The test deletes the two new token Secrets (what the token cleaner does at expiry) and
waits for the garbage collector; the next run must make fresh credentials.
Cost: about 4 min.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import time

import pytest

from reliability_lab import (SITE, assert_healthy_ha, file_digest, join_configs, kubeadm_calls, kubectl, prepare_nodes,
                             record_kubeadm_calls, run_playbook, vip_holders, wait_for)  # fmt: skip

pytestmark = [pytest.mark.lab, pytest.mark.reliability]

TASK = re.compile(r"^TASK \[(.*)\] \*")
PLAY = re.compile(r"^PLAY \[(.*)\] \*")
RESULT = re.compile(r"^(ok|changed): \[(\S+?)[\] ]")
# What preflight_facts says when a kubeadm init left by the killed run still ran at the start of the next.
WAITED = re.compile(r"kubeadm init \(PID \d+\) was still running on this node \(left by a run that stopped half-way\): "
                    r"it ended after ([\d.]+) s")


def kubeadm_processes(lab, node="cp1"):
    """The kubeadm init/join/reset processes running on a node (ps inside it)."""
    out = lab.exec(node, ["ps", "-eo", "pid,args"], check=True).stdout
    return [line.strip() for line in out.splitlines() if re.search(r"kubeadm (init|join|reset)( |$)", line)
            and " phase " not in line]


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


def init_started(lab):
    return lab.node_file("cp1", "/etc/kubernetes/pki/ca.crt").exists()


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
    # kubeadm init goes on without the controller: the next run finds it running, waits for its end (preflight)
    # and goes on from the cluster it made. The later kill points inside init then find init finished.
    ("during step 2 (kubeadm init started: the cluster CA written)", during_init(init_started)),
    ("after steps 2-3 (kubeadm init running, the kubelet runs the control plane manifests)",
     during_init(kubelet_runs_control_plane)),
    ("after step 4 (kube-vip announces the VIP on cp1)", during_init(vip_on_cp1)),
    ("after step 5 (the API answers through the VIP)", during_init(api_answers_through_vip)),
    ("after step 6 (kubeadm init finished)", after_task("Steps 1-6", "Step 2: kubeadm init", "cp1")),
    ("after step 6 (the VIP answers the init host)", after_task("Steps 1-6", "Steps 3-6", "cp1")),
    # Credentials that then expire before the next run (see expire).
    ("after the join credentials for cp2 (step 7 begun), which then expire",
     after_task("Step 7", "Step 7: fresh join credentials", "cp2")),
    ("after step 7 for cp2 (joined with fresh credentials)",
     after_task("Step 7", "Step 7: kubeadm join", "cp2")),
    ("after step 8 on cp2 (kube-vip manifest; cp1 still on super-admin.conf)",
     after_task("Step 8", "kube_vip : Write the kube-vip manifest", "cp2")),
]


def bootstrap_tokens(lab):
    """{token: description} of the bootstrap tokens in kube-system (each is a Secret bootstrap-token-<id>)."""
    secrets = json.loads(kubectl(lab, "cp1", "-n", "kube-system", "get", "secrets", "-o", "json",
                                 "--field-selector", "type=bootstrap.kubernetes.io/token").stdout)["items"]  # fmt: skip
    tokens = {}
    for secret in secrets:
        data = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
        tokens["%s.%s" % (data["token-id"], data["token-secret"])] = data.get("description", "")
    return tokens


def certificate_key_secret(lab):
    """The kubeadm-certs Secret (None when gone)."""
    result = kubectl(lab, "cp1", "-n", "kube-system", "get", "secret", "kubeadm-certs", "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def expire(lab, tokens):
    """What the expiry of these tokens does in a cluster: the token cleaner (kube-controller-manager)
    deletes the Secret of an expired bootstrap token; the garbage collector then deletes kubeadm-certs,
    whose owner is the certificate key's proxy token. Returns the seconds the garbage collector took."""
    owners = [ref["name"] for ref in (certificate_key_secret(lab) or {}).get("metadata", {}).get("ownerReferences", [])]
    assert owners and all(o.split("-")[-1] in [t.split(".")[0] for t in tokens] for o in owners), (owners, tokens)
    kubectl(lab, "cp1", "-n", "kube-system", "delete", "secret", *["bootstrap-token-" + t.split(".")[0] for t in tokens])
    started = time.monotonic()
    wait_for(lambda: certificate_key_secret(lab) is None, 120, interval=0.5,
             what="the garbage collector to delete kubeadm-certs after its owner token went")
    return time.monotonic() - started


@pytest.fixture(scope="module")
def lab(module_lab, tmp_path_factory):
    lab = module_lab(control_planes=2, workers=0)
    record_kubeadm_calls(lab)
    prepare_nodes(lab)
    return lab


def test_killed_after_each_step_then_finished(lab, tmp_path):
    report, ca_after_init, expired = [], None, set()
    for label, condition in KILL_POINTS:
        progress = Progress()
        expiring = "which then expire" in label
        if expiring:
            tokens_before = set(bootstrap_tokens(lab))

        def kill_when(line, _lines, progress=progress, condition=condition):
            result = progress.feed(line)
            return label if condition(progress, result, lab) else None

        run = run_playbook(lab, SITE, timeout=400, kill_when=kill_when)
        waited = WAITED.search(run.output)
        still = kubeadm_processes(lab)
        report.append("%s: killed after %.1f s%s; kubeadm init/join/reset on cp1 after the kill: %s; cp1 kubeadm so far: %s"
                      % (label, run.elapsed, "" if not waited else " (this run first waited %s s for the kubeadm init "
                                                                    "the previous run left)" % waited.group(1),
                         ", ".join(still) or "none", ", ".join(c.split(" --")[0] for c in kubeadm_calls(lab, "cp1")
                                                              if c.split(" ")[0] not in ("version",) and not c.startswith("init phase"))))
        assert run.killed_at == label, "the run did not reach the kill point %r:\n%r" % (label, run)
        if "kubeadm init started" in label:
            assert still, "no kubeadm init ran on cp1 right after the kill: the kill point came too late"
        if "kubeadm init finished" in label:
            ca_after_init = file_digest(lab, "cp1", "/etc/kubernetes/pki/ca.crt")
        if expiring:
            # This run's token for cp2 and the certificate key's proxy token (init's 24 h token stays).
            new = {t: d for t, d in bootstrap_tokens(lab).items() if t not in tokens_before}
            assert len(new) == 2 and any("kubeadm-certs" in d for d in new.values()), new
            expired = set(new)
            report.append("  tokens %s expired; the garbage collector deleted kubeadm-certs %.1f s later" % (
                ", ".join(t.split(".")[0] for t in expired), expire(lab, expired)))
        if "joined with fresh credentials" in label:
            join_config = join_configs(lab, "cp2")[-1]
            assert not any(token in join_config for token in expired), "cp2 joined with an expired token"
    final = run_playbook(lab, SITE, timeout=400)
    print("\n" + "\n".join(report) + "\nfinal run: rc %s, %.1f s" % (final.rc, final.elapsed))
    assert final.rc == 0, final
    # kubeadm init ran once: a killed controller never stops it, and each next run waited for it instead of
    # resetting the node under it; once init had finished, its CA stayed the same to the end.
    calls = [c.split(" ")[0] for c in kubeadm_calls(lab, "cp1")
             if c.split(" ")[0] in ("init", "reset") and not c.startswith("init phase")]
    assert calls == ["init"], "kubeadm init or reset ran more than the one init: %s" % calls
    assert kubeadm_processes(lab) == []
    assert ca_after_init is not None
    assert file_digest(lab, "cp1", "/etc/kubernetes/pki/ca.crt") == ca_after_init, "the cluster was initialized again"
    assert_healthy_ha(lab, tmp_path, control_planes=("cp1", "cp2"), workers=())
