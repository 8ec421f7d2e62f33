"""A first kubeadm init that fails half-way is finished by a plain re-run of site.yml (R6).

kube-vip runs on admin.conf during init (no rights before the kubeadm:cluster-admins binding), so the
VIP never comes and init fails; the re-run with the normal settings finds no kubeadm-config through the
node's own API server, resets the node and initializes it once more. Cost: one 1+0 lab, two runs.
"""

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "reliability"))

from lab.tests.conftest import lab_factory  # noqa: E402,F401  (the fixture)
from reliability_lab import (SITE, kubeadm_calls, kubeadm_inits, prepare_nodes, record_kubeadm_calls,  # noqa: E402
                             run_playbook, vip_holders)

pytestmark = pytest.mark.lab

SWITCH_OFF = {"control_plane_init_kubeconfig": "/etc/kubernetes/admin.conf"}


def test_failed_first_init_is_finished_by_a_plain_rerun(lab_factory, tmp_path):  # noqa: F811
    lab = lab_factory(control_planes=1, workers=0, time_scale=0.03)
    record_kubeadm_calls(lab)
    prepare_nodes(lab, tmp_path)
    failed = run_playbook(lab, SITE, timeout=300, extra=SWITCH_OFF)
    assert failed.rc != 0 and "Step 2: kubeadm init" in failed.output, failed
    assert vip_holders(lab) == []

    rerun = run_playbook(lab, SITE, timeout=300)
    assert rerun.rc == 0, rerun
    assert "stopped half-way" in rerun.output and "no kubeadm-config" in rerun.output, rerun
    assert vip_holders(lab) == ["cp1"]
    calls = [c.split(" ")[0] for c in kubeadm_calls(lab, "cp1")
             if c.split(" ")[0] in ("init", "reset") and not c.startswith("init phase")]
    assert calls == ["init", "reset", "init"], calls
    assert len(kubeadm_inits(lab, "cp1")) == 2  # the failed one and ONE successful one
