"""Labs for tests and measurements, each on its own /27 slice of 198.51.100.0/24.

Slices are claimed across processes (several pytest runs at once) under /run/vipadm-lab-slices/;
a claim whose process is gone is stale: its lab is torn down and the slice reused. `labs()` is the
factory the test fixtures wrap (lab/tests/conftest.py, tests/reliability/conftest.py); `claim_slice`
is for code that drives a lab's life itself (lab/tests/test_lab.py, lab/tests/test_real_nodes.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from lab import Lab
from lab.plan import overlapping_routes

SLICE_DIR = Path("/run/vipadm-lab-slices")
SLICES = [ipaddress.IPv4Network(f"198.51.100.{32 * i}/27") for i in range(8)]
CLAIM_WAIT = 300.0  # seconds to wait for a free slice while other test runs hold them all


class NoFreeSlice(RuntimeError):
    """Every slice is held by a live process, or covered by a route (e.g. the default lab is up)."""


def _start_time(pid: int) -> str | None:
    """Start time of a process (guards against PID reuse), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if fields[0] == "Z" else fields[19]


def host_routes() -> list[dict]:
    """This machine's IPv4 routes, every table, as `ip -j` prints them."""
    out = subprocess.run(["ip", "-j", "-4", "route", "show", "table", "all"], capture_output=True, text=True).stdout
    return json.loads(out or "[]")


def _release_stale(claim: Path) -> None:
    """Bring down the lab of a claim whose process died, then drop the claim."""
    with contextlib.suppress(Exception):
        data = json.loads(claim.read_text())
        if Path(data["state_dir"], "lab.json").exists():
            Lab.load(data["state_dir"]).down()
        lab = Lab(
            name=data["name"],
            state_dir=data["state_dir"],
            subnet=data["subnet"],
            control_planes=data["control_planes"],
            workers=data["workers"],
            runtime="bare",  # real or bare, down() removes what either kind of node made (no pins needed)
        )
        lab.down()
        shutil.rmtree(data["state_dir"], ignore_errors=True)
    claim.unlink(missing_ok=True)


def claim_slice(control_planes: int, workers: int, wait: float = CLAIM_WAIT) -> tuple[Path, str, str, Path]:
    """Claim a free slice for this process: (claim file, lab name, subnet, empty state dir).

    Drop the claim file (and the state dir) when the lab is down again; a claim left behind by a
    process that is gone is reclaimed by the next caller.
    """
    SLICE_DIR.mkdir(mode=0o755, exist_ok=True)
    deadline = time.monotonic() + wait
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
                routes = host_routes() if routes is None else routes
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
            raise NoFreeSlice(
                f"no free /27 slice of 198.51.100.0/24 for a lab after {wait:.0f} s: other test runs hold "
                f"{SLICE_DIR}, or a lab (e.g. `python -m lab up`, which takes the whole /24) is up"
            )
        time.sleep(0.5)


@contextlib.contextmanager
def labs():
    """A factory of labs that are up; every lab it made is brought down when the block ends.

    `make(control_planes=3, workers=0, kubernetes_version=None, runtime="real", node_software="installed",
    kube_vip_version=None, ipv6=False)`
    returns a Lab (runtime "real": the programs built by lab/components, kubernetes_version None: the pins'
    default; "bare": sshd only; node_software "bare": real nodes with Debian's packages only, see core.py).
    """
    made: list[tuple[Lab, Path, Path]] = []

    def make(
        control_planes: int = 3,
        workers: int = 0,
        kubernetes_version: str | None = None,
        runtime: str = "real",
        node_software: str = "installed",
        kube_vip_version: str | None = None,
        ipv6: bool = False,
    ):
        claim, name, subnet, state_dir = claim_slice(control_planes, workers)
        lab = Lab(
            name=name,
            state_dir=state_dir,
            subnet=subnet,
            control_planes=control_planes,
            workers=workers,
            kubernetes_version=kubernetes_version,
            runtime=runtime,
            node_software=node_software,
            kube_vip_version=kube_vip_version,
            ipv6=ipv6,
        )
        made.append((lab, claim, state_dir))
        lab.up()
        return lab

    try:
        yield make
    finally:
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
            raise RuntimeError("lab teardown failed: " + "; ".join(errors))
