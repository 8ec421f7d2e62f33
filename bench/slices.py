"""Claim adjacent /27 slices of 198.51.100.0/24 the way the lab's test fixture does.

lab/tests/conftest.py and molecule/default/lab_slice.py claim one /27 each as
/run/vipadm-lab-slices/slice<N>.json under an flock on .lock. A benchmark lab with 30 workers needs a
/26 (33 nodes from the 11th host on, the VIP on the last one), so it claims two adjacent slices (or four
for a /25) with the same protocol: pytest labs then never take an address the benchmark uses, and a
claim whose process is gone is stale for them (they bring that lab down and reuse the slice).
"""

import fcntl
import ipaddress
import json
import os
import time
from pathlib import Path

SLICE_DIR = Path("/run/vipadm-lab-slices")
LAB_NET = ipaddress.IPv4Network("198.51.100.0/24")
SLICE_PREFIX = 27
MOLECULE_SLICE = 7  # molecule/default/create.yml always claims slice 7 and waits while it is held
FIRST_NODE_HOST = 11  # the lab puts nodes from the 11th host on; the VIP is the last usable address


def prefix_for(nodes):
    """The smallest prefix (27 or wider) whose subnet holds `nodes` lab nodes and the VIP."""
    for prefix in (27, 26, 25, 24):
        usable = 2 ** (32 - prefix) - 2
        if FIRST_NODE_HOST + nodes - 1 < usable:  # the last usable host is the VIP
            return prefix
    raise ValueError(f"{nodes} nodes do not fit in {LAB_NET}: at most {254 - FIRST_NODE_HOST} nodes")


def _start_time(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None


def _routes():
    import subprocess  # pylint: disable=import-outside-toplevel
    out = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True,
                         check=True).stdout
    nets = []
    for line in out.splitlines():
        words = line.split()
        if words and words[0] in ("unreachable", "blackhole", "prohibit"):
            words = words[1:]
        try:
            nets.append(ipaddress.IPv4Network(words[0], strict=False))
        except (ValueError, IndexError):
            continue
    return [n for n in nets if n.prefixlen > 0]


class Claim:
    """Slices claimed for one benchmark lab: `subnet`, released by `release()`."""

    def __init__(self, indices, subnet, name, state_dir):
        self.indices, self.subnet, self.name, self.state_dir = indices, subnet, name, state_dir

    def release(self):
        with open(SLICE_DIR / ".lock", "a", encoding="ascii") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for index in self.indices:
                path = SLICE_DIR / f"slice{index}.json"
                try:
                    owner = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue
                if owner.get("pid") == os.getpid() and owner.get("name") == self.name:
                    path.unlink()


def claim(control_planes, workers, name, state_dir, wait=600.0):
    """Claim free adjacent slices for a lab of that size; wait up to `wait` s while others hold them."""
    prefix = prefix_for(control_planes + workers)
    SLICE_DIR.mkdir(mode=0o755, exist_ok=True)
    deadline = time.monotonic() + wait
    while True:
        with open(SLICE_DIR / ".lock", "a", encoding="ascii") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            routes = _routes()
            # Highest slices first (the fixture takes the lowest free one), never Molecule's fixed slice.
            for subnet in sorted(LAB_NET.subnets(new_prefix=prefix), reverse=True):
                indices = [(int(s.network_address) - int(LAB_NET.network_address)) >> (32 - SLICE_PREFIX)
                           for s in subnet.subnets(new_prefix=SLICE_PREFIX)]
                if MOLECULE_SLICE in indices:
                    continue
                if any(_held(SLICE_DIR / f"slice{i}.json") for i in indices) or any(subnet.overlaps(r) for r in routes):
                    continue
                me = {"pid": os.getpid(), "start_time": _start_time(os.getpid()), "name": name,
                      "subnet": str(subnet), "state_dir": str(state_dir), "control_planes": control_planes,
                      "workers": workers}
                for index in indices:
                    (SLICE_DIR / f"slice{index}.json").write_text(json.dumps(me))
                return Claim(indices, str(subnet), name, state_dir)
        if time.monotonic() > deadline:
            raise RuntimeError(f"no free /{prefix} in {LAB_NET} for a lab of {control_planes + workers} nodes after {wait:.0f} s: "
                               f"other labs hold {SLICE_DIR} or its routes; wait for them to finish")
        time.sleep(1)


def _held(path):
    """True while a live process holds the claim (a claim of a dead process is stale)."""
    try:
        owner = json.loads(path.read_text())
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True
    pid = owner.get("pid", -1)
    return pid > 0 and _start_time(pid) is not None and _start_time(pid) == owner.get("start_time", _start_time(pid))
