# -*- coding: utf-8 -*-
"""The reliability suite's lab fixture: one lab per test module.

The lab's fixture `lab_factory` gives one lab per test; the cases here share one lab per module (bad
input, secrets, faults), so this file wraps the same factory (lab/slices.py: slice claims, up,
teardown) with module scope. Every lab of the suite runs the real programs (runtime "real": containerd,
the kubelet, kubeadm, etcd, the control plane and kube-vip built from upstream sources).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from lab.slices import labs  # noqa: E402


@pytest.fixture(scope="module")
def module_lab():
    """Factory of labs that live for the whole test module; each is brought down at its end."""
    if os.geteuid() != 0:
        pytest.skip("lab tests need root (namespaces, links, mounts): run pytest as root")
    with labs() as make:

        def make_real(control_planes=3, workers=0, **options):
            return make(control_planes, workers, runtime="real", **options)

        yield make_real
