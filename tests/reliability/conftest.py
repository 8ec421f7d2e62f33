# -*- coding: utf-8 -*-
"""The reliability suite's lab fixture: one lab per test module.

The lab's own fixture (`lab_factory` in lab/tests/conftest.py) gives one lab per test; the cases here
share one lab per module (bad input, secrets, faults), so this file claims a slice the same way, with
the same claim files, for the whole module.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from lab import Lab  # noqa: E402
from lab.tests.conftest import _claim_slice  # noqa: E402  (slice claims shared with the lab's fixture)

KUBERNETES_VERSION = "1.32.4"


@pytest.fixture(scope="module")
def module_lab():
    """Factory of labs that live for the whole test module; each is brought down at its end."""
    if os.geteuid() != 0:
        pytest.skip("lab tests need root (namespaces, links, mounts): run pytest as root")
    made = []

    def make(control_planes=3, workers=1, kubernetes_version=KUBERNETES_VERSION, time_scale=1.0):
        claim, name, subnet, state_dir = _claim_slice(control_planes, workers)
        lab = Lab(name=name, state_dir=state_dir, subnet=subnet, control_planes=control_planes, workers=workers,
                  kubernetes_version=kubernetes_version, time_scale=time_scale)  # fmt: skip
        made.append((lab, claim, state_dir))
        lab.up()
        return lab

    yield make
    errors = []
    for lab, claim, state_dir in reversed(made):
        try:
            lab.down()
        except Exception as exc:  # keep tearing the others down, report at the end
            errors.append("%s: %s" % (lab.name, exc))
            continue
        shutil.rmtree(state_dir, ignore_errors=True)
        claim.unlink(missing_ok=True)
    if errors:
        pytest.fail("lab teardown failed: " + "; ".join(errors))


