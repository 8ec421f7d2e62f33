"""Claim (or release) the Molecule scenario's /27 slice of 198.51.100.0/24 the way the lab's test
fixture does (lab/tests/conftest.py: /run/vipadm-lab-slices/slice<N>.json under .lock), so pytest
labs never take the slice while the scenario's lab is up. The claim belongs to the `molecule`
process: when it dies, the fixture sees a stale claim, brings that lab down and reuses the slice.

usage: python lab_slice.py claim|release INDEX NAME SUBNET STATE_DIR
"""
import fcntl
import json
import os
import sys
import time
from pathlib import Path

SLICE_DIR = Path("/run/vipadm-lab-slices")


def start_time(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[19]


def molecule_pid():
    """The nearest ancestor whose command line runs molecule (the owner of the whole scenario)."""
    pid = os.getppid()
    while pid > 1:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = f.read().split(b"\0")
        if any(os.path.basename(a) == b"molecule" for a in argv[:2]):
            return pid
        with open("/proc/%d/stat" % pid) as f:
            pid = int(f.read().rsplit(")", 1)[1].split()[1])
    return os.getppid()


def main(action, index, name, subnet, state_dir):
    SLICE_DIR.mkdir(mode=0o755, exist_ok=True)
    claim = SLICE_DIR / ("slice%s.json" % index)
    deadline = time.monotonic() + 300
    while True:
        with open(SLICE_DIR / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            owner = json.loads(claim.read_text()) if claim.exists() else None
            if action == "release":
                if owner and owner.get("name") == name:
                    claim.unlink()
                return 0
            mine = owner and owner.get("name") == name
            alive = owner and owner.get("pid", -1) > 0 and os.path.exists("/proc/%d" % owner["pid"])
            if not owner or mine or not alive:
                pid = molecule_pid()
                claim.write_text(json.dumps({
                    "pid": pid, "start_time": start_time(pid), "name": name, "subnet": subnet,
                    "state_dir": state_dir, "control_planes": 3, "workers": 1}))
                return 0
        if time.monotonic() > deadline:
            sys.exit("slice %s (%s) stays claimed by %s: wait for that test run or end it" % (index, subnet, owner))
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:6]))
