"""Fixtures for tests that need a running lab.

`lab_factory(control_planes=3, workers=0, kubernetes_version="1.32.4", time_scale=1.0)` returns a
Lab that is up, on its own /27 slice of 198.51.100.0/24 with its own short name, and brings it
down at the end of the test (`module_lab_factory`: at the end of the module). Slices are claimed across processes (several pytest runs at once)
under /run/vipadm-lab-slices/; a claim whose process is gone is stale: its lab is torn down and
the slice reused.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from lab import Lab  # noqa: E402
from lab.plan import overlapping_routes  # noqa: E402

SLICE_DIR = Path("/run/vipadm-lab-slices")
SLICES = [ipaddress.IPv4Network(f"198.51.100.{32 * i}/27") for i in range(8)]
CLAIM_WAIT = 300.0  # seconds to wait for a free slice while other test runs hold them all


def _start_time(pid: int) -> str | None:
    """Start time of a process (guards against PID reuse), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if fields[0] == "Z" else fields[19]


def _host_routes() -> list[dict]:
    out = subprocess.run(["ip", "-j", "-4", "route", "show", "table", "all"], capture_output=True, text=True).stdout
    return json.loads(out or "[]")


def _release_stale(claim: Path) -> None:
    """Bring down the lab of a claim whose test process died, then drop the claim."""
    with contextlib.suppress(Exception):
        data = json.loads(claim.read_text())
        lab = Lab(
            name=data["name"],
            state_dir=data["state_dir"],
            subnet=data["subnet"],
            control_planes=data["control_planes"],
            workers=data["workers"],
        )
        lab.down()
        shutil.rmtree(data["state_dir"], ignore_errors=True)
    claim.unlink(missing_ok=True)


def _claim_slice(control_planes: int, workers: int) -> tuple[Path, str, str, Path]:
    SLICE_DIR.mkdir(mode=0o755, exist_ok=True)
    deadline = time.monotonic() + CLAIM_WAIT
    while True:
        with open(SLICE_DIR / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            routes = None
            for index, subnet in enumerate(SLICES):
                claim = SLICE_DIR / f"slice{index}.json"
                if claim.exists():
                    try:
                        owner = json.loads(claim.read_text())
                    except ValueError:
                        owner = {"pid": -1}
                    if owner.get("pid", -1) > 0 and _start_time(owner["pid"]) == owner.get("start_time"):
                        continue
                    _release_stale(claim)
                routes = _host_routes() if routes is None else routes
                if overlapping_routes(subnet, routes):
                    continue  # e.g. the default lab (198.51.100.0/24) is up
                name = f"vt{index}"
                state_dir = Path(tempfile.mkdtemp(prefix=f"vipadm-lab-{name}-", dir="/tmp"))
                claim.write_text(
                    json.dumps(
                        {
                            "pid": os.getpid(),
                            "start_time": _start_time(os.getpid()),
                            "name": name,
                            "subnet": str(subnet),
                            "state_dir": str(state_dir),
                            "control_planes": control_planes,
                            "workers": workers,
                        }
                    )
                )
                return claim, name, str(subnet), state_dir
        if time.monotonic() > deadline:
            pytest.fail(
                f"no free /27 slice of 198.51.100.0/24 for a lab after {CLAIM_WAIT:.0f} s: other test runs hold "
                f"{SLICE_DIR}, or a lab (e.g. `python -m lab up`, which takes the whole /24) is up"
            )
        time.sleep(0.5)


def pytest_collection_modifyitems(items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="lab tests need root (namespaces, links, mounts): run pytest as root")
    for item in items:
        if "lab" in item.keywords:
            item.add_marker(skip)


@contextlib.contextmanager
def _labs():
    """A factory of labs that are up; every lab it made is brought down when the block ends."""
    if os.geteuid() != 0:
        pytest.skip("lab tests need root (namespaces, links, mounts): run pytest as root")
    made: list[tuple[Lab, Path, Path]] = []

    def make(control_planes: int = 3, workers: int = 0, kubernetes_version: str = "1.32.4", time_scale: float = 1.0):
        claim, name, subnet, state_dir = _claim_slice(control_planes, workers)
        lab = Lab(
            name=name,
            state_dir=state_dir,
            subnet=subnet,
            control_planes=control_planes,
            workers=workers,
            kubernetes_version=kubernetes_version,
            time_scale=time_scale,
        )
        made.append((lab, claim, state_dir))
        lab.up()
        return lab

    yield make
    errors = []
    for lab, claim, state_dir in reversed(made):
        try:
            lab.down()
        except Exception as exc:  # keep tearing the others down, report at the end
            errors.append(f"{lab.name}: {exc}")
            continue
        shutil.rmtree(state_dir, ignore_errors=True)
        claim.unlink(missing_ok=True)
    if errors:
        pytest.fail("lab teardown failed: " + "; ".join(errors))


@pytest.fixture
def lab_factory():
    """Factory of labs that are up; each is brought down when the test ends."""
    with _labs() as make:
        yield make


@pytest.fixture(scope="module")
def module_lab_factory():
    """The same, for labs shared by the tests of a module (brought down after its last test): for
    tests that read a cluster without disturbing each other, so it is bootstrapped once."""
    with _labs() as make:
        yield make
