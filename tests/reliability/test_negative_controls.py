# -*- coding: utf-8 -*-
"""Negative controls: the lab fails where the field fails, so the passing runs mean something.

One real lab (2 control planes); the tests run in file order, the first two on cp1 alone:
1. No kube-vip while kubeadm init runs (its manifest removed as the init task starts, a real fault): on
   Kubernetes 1.36.3 init itself does not need the VIP (kubeadm checks the control plane and makes all of
   init's API calls on the node itself, kubernetes PR #138449; the init host's kubelet.conf points there
   too), so init finishes and the run stops at the next step, the VIP check from the init host
   (`wait_for_vip`, control_plane_vip_timeout 15 s here: without kube-vip the VIP never answers, so
   the timeout only sets how long the run waits for that), with the stage that failed. reset.yml then
   takes cp1 back to bare.
2. The super-admin.conf switch off (kube-vip on admin.conf during init, kube-vip issue #684): kube-vip is
   refused its lease (`User "kubernetes-admin" cannot get resource "leases"`) until kubeadm has created
   the kubeadm:cluster-admins binding, which kubeadm 1.36.3 does through the node's own API server early
   in init; kube-vip's leader election retries, the VIP comes up and the bootstrap succeeds. The field's
   failure (init timing out on the VIP) needs a kubeadm before PR #138449 (1.29-1.33, early patch
   releases of 1.34-1.36), which the lab does not pin: recorded, not reproduced.
3. The kube-vip manifest copied into a joining control plane's static Pod directory before its
   `kubeadm join` instead of after (a reordered copy of site.yml): nothing breaks with kubeadm 1.36
   (no DirAvailable check on join); asserted as such.
Cost: 1 min 34 s (2026-12-05 at 23:55 UTC: lab up and node_prep 19 s, no kube-vip 32 s with the 15 s VIP wait,
switch off 16 s, manifests before the joins 25 s).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from reliability_lab import (KUBEADM_CALLS, SITE, assert_healthy_ha, kubeadm_calls, kubeadm_inits, prepare_nodes,
                             record_kubeadm_calls, run_playbook, vip_holders, write_inventory)  # fmt: skip

pytestmark = [pytest.mark.lab, pytest.mark.reliability]

KUBE_VIP_MANIFEST = "/etc/kubernetes/manifests/kube-vip.yaml"
RESET = str(Path(SITE).parent / "reset.yml")
SWITCH_OFF = {"control_plane_init_kubeconfig": "/etc/kubernetes/admin.conf"}
TASK = re.compile(r"^TASK \[(.*)\] \*")
# The VIP check of the run without kube-vip: nobody can hold the VIP, so this only sets how long that run waits
# (kube-vip takes the lease within a few seconds of the API server answering in every passing run).
VIP_TIMEOUT = 15
LEASE_FORBIDDEN = re.compile(r'plndr-cp-lock\\?" is forbidden: User \\?"kubernetes-admin\\?" cannot get resource \\?"leases')


@pytest.fixture(scope="module")
def lab(module_lab):
    lab = module_lab(control_planes=2, workers=0)
    record_kubeadm_calls(lab)
    prepare_nodes(lab)
    return lab


@pytest.fixture(scope="module")
def cp1_alone(lab, tmp_path_factory):
    """An inventory of cp1 alone: cp2 stays bare for the last test."""
    return write_inventory(tmp_path_factory.mktemp("cp1") / "inventory", lab, {"control_plane": ["cp1"], "workers": []})


def newest_kube_vip_log(lab, node="cp1"):
    """The log of the newest kube-vip container on a node (the kubelet's /var/log/pods)."""
    logs = sorted(lab.node_file(node, "/var/log/pods").glob("kube-system_kube-vip-%s_*/kube-vip/*.log" % node),
                  key=lambda path: path.stat().st_mtime)
    return logs[-1].read_text() if logs else ""


def test_init_without_kube_vip_stops_at_the_vip_check(lab, cp1_alone):
    state = {"task": "", "removed_at": None}

    def remove_kube_vip(line, _lines):
        if line and TASK.match(line):
            state["task"] = TASK.match(line).group(1)
        if state["removed_at"] is None and "Step 2: kubeadm init" in state["task"]:
            lab.exec("cp1", ["rm", KUBE_VIP_MANIFEST], check=True)  # step 1 wrote it; kubeadm init has not started
            state["removed_at"] = time.monotonic()
        return None

    run = run_playbook(lab, SITE, inventory=cp1_alone, timeout=400, kill_when=remove_kube_vip,
                       extra={"control_plane_vip_timeout": VIP_TIMEOUT})  # fmt: skip
    print("\nno kube-vip during init: rc %s after %.1f s; init %.1f s; %s" % (
        run.rc, run.elapsed, (run.at(r"^TASK \[.*Steps 3-6: the API server answers through the VIP, from the init")
                              or 0) - (run.at(r"^TASK \[.*Step 2: kubeadm init") or 0),
        "; ".join(e for e in run.errors() if e.startswith("[ERROR]"))))
    assert state["removed_at"], run
    assert run.rc != 0, run
    # kubeadm init finished without the VIP (changed), the run stopped at the VIP check after it.
    assert re.search(r"Step 2: kubeadm init.*\*+\nchanged: \[cp1\]", run.output), run
    assert re.search(r"Steps 3-6: the API server answers through the VIP, from the init host\] \**\n"
                     r"(\[ERROR\]: )?.*did not answer /livez with 200 within %ds" % VIP_TIMEOUT, run.output), run
    assert "last stage tcp" in run.output and "kube-vip does not hold the address" in run.output, run
    assert vip_holders(lab) == []
    assert len(kubeadm_inits(lab, "cp1")) == 1
    reset = run_playbook(lab, RESET, inventory=cp1_alone, timeout=300, extra={"reset_confirm": True})
    assert reset.rc == 0, reset
    assert not lab.node_file("cp1", "/etc/kubernetes/admin.conf").exists()


def test_init_with_the_switch_off_passes_on_1_36(lab, cp1_alone):
    run = run_playbook(lab, SITE, inventory=cp1_alone, timeout=400, extra=SWITCH_OFF)
    init = ((run.at(r"^TASK \[.*Steps 3-6: the API server answers through the VIP, from the init") or 0)
            - (run.at(r"^TASK \[.*Step 2: kubeadm init") or 0))
    log = newest_kube_vip_log(lab)
    forbidden = LEASE_FORBIDDEN.findall(log)
    print("\nswitch off (kube-vip on admin.conf during init): rc %s after %.1f s, kubeadm init %.1f s; kube-vip "
          "refused its lease %d time(s), then: %s" % (run.rc, run.elapsed, init, len(forbidden), "; ".join(
              line.split(" F ", 1)[-1][:120] for line in log.splitlines() if "Successfully acquired lease" in line)))
    assert run.rc == 0, run
    assert vip_holders(lab) == ["cp1"]
    assert "Successfully acquired lease" in log, log[-3000:]
    calls = [c.split(" ")[0] for c in kubeadm_calls(lab, "cp1") if c.split(" ")[0] in ("init", "reset")
             and not c.startswith("init phase")]
    assert calls == ["init", "reset", "init"], calls


def manifests_before_joins():
    """site.yml with the step 8 play of the joining control planes moved before the step 7 play, and its
    VIP check dropped (a node that has not joined has no CA to check with): only the copy moves."""
    plays = yaml.safe_load(open(SITE).read())
    names = [play["name"] for play in plays]
    join = next(i for i, n in enumerate(names) if n.startswith("Step 7"))
    copy = next(i for i, n in enumerate(names) if n.startswith("Step 8") and plays[i]["hosts"] == "control_plane_join")
    early = {"name": "Step 8 moved before step 7 - kube-vip manifest on each control plane that will join",
             "hosts": "control_plane_join", "gather_facts": False,
             "tasks": [{"name": "Step 8 (early)", "ansible.builtin.include_role": {"name": "vipadm.kubeadm.kube_vip"},
                        "vars": {"kube_vip_kubeconfig": "/etc/kubernetes/admin.conf"}}]}  # fmt: skip
    reordered = plays[:join] + [early] + plays[join:copy] + plays[copy + 1:]
    return yaml.safe_dump(reordered, sort_keys=False)


def test_manifests_copied_before_the_joins(lab, tmp_path):
    """cp2 joins cp1's cluster (the one the test before made) with its kube-vip manifest already there."""
    playbook = tmp_path / "site-manifests-before-joins.yml"
    playbook.write_text(manifests_before_joins())
    run = run_playbook(lab, playbook, timeout=400)
    joins = kubeadm_calls(lab, "cp2", "join")
    print("\nmanifests before the joins: rc %s after %.1f s; errors: %s" % (run.rc, run.elapsed, run.errors()))
    # The copy really came first: kube-vip.yaml was written before cp2's kubeadm join started.
    join_started = float(next(line for line in lab.node_file("cp2", KUBEADM_CALLS).read_text().splitlines()
                              if " join " in line).split(" ")[0])  # fmt: skip
    assert lab.node_file("cp2", KUBE_VIP_MANIFEST).stat().st_mtime < join_started
    # kubeadm 1.36 has no DirAvailable--etc-kubernetes-manifests check on join (reference kubeadm.md 1.3):
    # the early manifest does not stop the join, and kube-vip on cp2 waits for admin.conf that the join
    # writes. The field failure (eks-anywhere #4543) was kubeadm <= 1.22, outside vipadm's 1.29-1.37.
    assert run.rc == 0, run
    assert len(joins) == 1, joins
    assert_healthy_ha(lab, tmp_path, control_planes=("cp1", "cp2"), workers=(), max_inits=2)
