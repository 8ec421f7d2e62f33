# -*- coding: utf-8 -*-
"""The reliability suite's lab fixture: one lab per test module.

The lab's fixture `lab_factory` gives one lab per test; the cases here share one lab per module (bad
input, secrets, faults), so this file wraps the same factory (lab/slices.py: slice claims, up,
teardown) with module scope.
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
        yield make
