# -*- coding: utf-8 -*-
"""Negative controls: the lab fails where the field fails, so the passing runs mean something.

1. super-admin.conf switch off (kube-vip on admin.conf during init, Kubernetes 1.32): kubeadm init
   times out waiting for the API through the VIP, as in kube-vip issue #684; after reset.yml, a run
   with the switch on succeeds on the same node. One control plane, time_scale 0.03 (kubeadm's 4 min API check
   lasts 7.2 s).
2. The kube-vip manifest copied into a joining control plane's static Pod directory before its
   `kubeadm join` instead of after (a reordered copy of site.yml): nothing breaks with kubeadm 1.23+
   (no DirAvailable check on join); asserted as such and recorded in docs/reliability.md.
Cost: about 2 min.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reliability_lab import (KUBEADM_CALLS, SITE, assert_healthy_ha, kubeadm_calls, kubeadm_inits, prepare_nodes,
                             record_kubeadm_calls, run_playbook, vip_holders)  # fmt: skip

pytestmark = [pytest.mark.lab, pytest.mark.reliability]

API_CHECK_FAILED = "[api-check] The API server is not healthy after"
KUBE_VIP_MANIFEST = "/etc/kubernetes/manifests/kube-vip.yaml"
RESET = str(Path(SITE).parent / "reset.yml")
SWITCH_OFF = {"control_plane_init_kubeconfig": "/etc/kubernetes/admin.conf"}


def test_init_fails_without_super_admin_conf_and_succeeds_with_it(module_lab, tmp_path):
    lab = module_lab(control_planes=1, workers=0, time_scale=0.03)
    record_kubeadm_calls(lab)
    prepare_nodes(lab, tmp_path)
    off = run_playbook(lab, SITE, timeout=300, extra=SWITCH_OFF)
    assert off.rc != 0, off
    assert "Step 2: kubeadm init" in off.output and "fatal: [cp1]" in off.output, off
    log = lab.node_file("cp1", "/var/lib/kubelet/sim-logs/kube-vip.log").read_text()
    assert 'cannot get resource \\"leases\\"' in log or 'cannot get resource "leases"' in log, log[-2000:]
    assert vip_holders(lab) == []
    print("\nswitch off: rc %s after %.1f s; the init failure as reported:\n%s" % (
        off.rc, off.elapsed, "\n".join(line for line in off.output.splitlines() if "kubeadm init" in line and "ERROR" in line)))
    # A plain re-run does not recover this node (docs/reliability.md, requested from the bootstrap): it
    # keeps the files of an initialized control plane, so the documented reset comes first.
    reset = run_playbook(lab, RESET, timeout=300, extra={"reset_confirm": True})
    assert reset.rc == 0, reset
    on = run_playbook(lab, SITE, timeout=300)
    assert on.rc == 0, on
    assert vip_holders(lab) == ["cp1"]
    calls = [c.split(" ")[0] for c in kubeadm_calls(lab, "cp1") if c.split(" ")[0] in ("init", "reset")
             and not c.startswith("init phase")]
    assert calls[0] == "init" and calls[-1] == "init" and "reset" in calls, calls
    assert len(kubeadm_inits(lab, "cp1")) == 2


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


def test_manifests_copied_before_the_joins(module_lab, tmp_path):
    lab = module_lab(control_planes=2, workers=0)
    record_kubeadm_calls(lab)
    prepare_nodes(lab, tmp_path)
    playbook = tmp_path / "site-manifests-before-joins.yml"
    playbook.write_text(manifests_before_joins())
    run = run_playbook(lab, playbook, timeout=400)
    joins = kubeadm_calls(lab, "cp2", "join")
    print("\nmanifests before the joins: rc %s after %.1f s; errors: %s" % (run.rc, run.elapsed, run.errors()))
    # The copy really came first: kube-vip.yaml was written before cp2's kubeadm join started.
    join_started = float(lab.node_file("cp2", KUBEADM_CALLS).read_text().split("\n")[0].split(" ")[0])
    assert lab.node_file("cp2", KUBE_VIP_MANIFEST).stat().st_mtime < join_started
    # kubeadm 1.23+ has no DirAvailable--etc-kubernetes-manifests check on join (reference kubeadm.md 1.3):
    # the early manifest does not stop the join, and kube-vip on cp2 waits for admin.conf that the join
    # writes. The field failure (eks-anywhere #4543) was kubeadm <= 1.22, outside vipadm's 1.29-1.36.
    assert run.rc == 0, run
    assert len(joins) == 1, joins
    assert_healthy_ha(lab, tmp_path, control_planes=("cp1", "cp2"), workers=())
