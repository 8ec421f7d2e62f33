"""What the lab's parts share about this machine: the error they raise, running a command, processes
by PID (guarded against PID reuse), the lock that serialises the network set-up of all labs."""

from __future__ import annotations

import contextlib
import fcntl
import subprocess
from pathlib import Path

GLOBAL_LOCK = Path("/run/vipadm-lab.lock")  # serialises the subnet check and network set-up of all labs


class LabError(RuntimeError):
    """The lab cannot do what was asked; the message says why and what to do."""


def start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def run(argv: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed (rc {result.returncode}): {result.stderr.strip()}")
    return result


@contextlib.contextmanager
def global_lock():
    with open(GLOBAL_LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
