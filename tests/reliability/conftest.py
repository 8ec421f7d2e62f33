# -*- coding: utf-8 -*-
"""The reliability suite's lab fixture: one lab per test module.

The lab's own fixture (`lab_factory` in lab/tests/conftest.py) gives one lab per test; the cases here
share one lab per module (bad input, secrets, faults), so this file uses the same factory (slice
claims, up, teardown) with module scope.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from lab.tests.conftest import _labs  # noqa: E402  (the lab's own factory: slice claims, up, teardown)


@pytest.fixture(scope="module")
def module_lab():
    """Factory of labs that live for the whole test module; each is brought down at its end."""
    with _labs() as make:
        yield make
