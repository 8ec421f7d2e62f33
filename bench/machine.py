"""What the benchmark records about the machine: what it is, its load, and the memory of each lab node."""

import os
import platform
import subprocess
from pathlib import Path

from lab.nodes import limits


def _mb(kib):
    """/proc's "kB" (KiB) in MB."""
    return round(kib * 1024 / 1e6, 1)


def describe(ansible):
    """What the figures were measured on (`ansible`: the ansible command)."""
    def first(path, key):
        try:
            for line in Path(path).read_text(encoding="utf-8").splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip() if ":" in line else line.split("=", 1)[1].strip('"')
        except OSError:
            pass
        return "unknown"
    version = subprocess.run([str(ansible), "--version"], capture_output=True, text=True,
                             check=False).stdout.splitlines()
    return {
        "cpu": first("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count(),
        "memory": first("/proc/meminfo", "MemTotal"),
        "os": first("/etc/os-release", "PRETTY_NAME"),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "ansible": version[0] if version else "unknown",
        "load_at_start": load(),
    }


def load():
    """The load averages over 1, 5 and 15 minutes, as `uptime` prints them (rounded to 2 decimals)."""
    return [round(value, 2) for value in os.getloadavg()]


def mem_available_mb():
    for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
        if line.startswith("MemAvailable:"):
            return _mb(int(line.split()[1]))
    return None


def _children():
    """{parent PID: [child PIDs]} of every process of the machine."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    return children


def _rss_pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
            lines = rollup.read().splitlines()
    except OSError:  # gone meanwhile, or a kernel thread
        return 0, 0
    fields = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
    return tuple(int(fields.get(key, "0 kB").split()[0]) for key in ("Rss", "Pss"))


def node_memory(lab):
    """{node: {"pss_mb", "rss_mb", "processes", "inotify"}}: every process of a running node, i.e. its PID 1
    and all below it (sshd, containerd, the kubelet, the shims and every container). PSS shares each page
    among the processes that map it (the machine's one copy of the binaries is split across the nodes); RSS
    counts shared pages in full for every process; inotify: the instances the node's processes hold."""
    children = _children()
    result = {}
    for row in lab.status():
        if row["pid"] is None:
            continue
        todo, rss, pss, count, inotify = [row["pid"]], 0, 0, 0, 0
        while todo:
            pid = todo.pop()
            todo.extend(children.get(pid, ()))
            one_rss, one_pss = _rss_pss_kb(pid)
            rss, pss, count = rss + one_rss, pss + one_pss, count + 1
            inotify += limits.instances_held(pid)
        result[row["name"]] = {"pss_mb": _mb(pss), "rss_mb": _mb(rss), "processes": count, "inotify": inotify}
    return result
