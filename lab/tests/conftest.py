"""Fixtures for tests that need a running lab.

`lab_factory(control_planes=3, workers=0, kubernetes_version=None, runtime="real", node_software="installed")`
returns a Lab that is up (runtime "bare": nodes without Kubernetes, for tests of the lab itself;
node_software "bare": real nodes that node_prep fills from the pin's bundle), on its own
/27 slice of 198.51.100.0/24 with its own short name, and brings it down at the end of the test
(`module_lab_factory`: at the end of the module). The slices and the factory live in lab/slices.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from lab.slices import labs  # noqa: E402


def pytest_collection_modifyitems(items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="lab tests need root (namespaces, links, mounts): run pytest as root")
    for item in items:
        if "lab" in item.keywords:
            item.add_marker(skip)


def _need_root():
    if os.geteuid() != 0:
        pytest.skip("lab tests need root (namespaces, links, mounts): run pytest as root")


@pytest.fixture
def lab_factory():
    """Factory of labs that are up; each is brought down when the test ends."""
    _need_root()
    with labs() as make:
        yield make


@pytest.fixture(scope="module")
def module_lab_factory():
    """The same, for labs shared by the tests of a module (brought down after its last test): for
    tests that read a cluster without disturbing each other, so it is bootstrapped once."""
    _need_root()
    with labs() as make:
        yield make
