"""PID 1 of a lab node ("power on" of a node).

Started by the controller as
    nsenter --net=/run/netns/<ns> unshare --mount --uts --pid --fork --propagation private \
        /usr/bin/python3 -I -S pid1.py <node dir>/boot.json
so it runs in the node's network namespace and in a fresh mount, UTS and PID namespace. It builds
the node's private file system (overlays on /etc, /var/lib, /var/log, /root, /usr/local/bin,
tmpfs /run, own /proc and /sys), sets the hostname, applies /etc/sysctl.d for the keys of its own
network stack, starts sshd and the enabled units (through the systemctl stand-in), then reaps orphans like an init. SIGTERM or SIGKILL ends the node: the kernel
kills every process of the PID namespace with it. Standard library only; runs with Debian's python3.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

SSHD_RESTART_DELAY = 1.0


def run(*argv):
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)


def mount_overlay(name, lower, target, node_dir):
    upper, work = f"{node_dir}/disk/{name}", f"{node_dir}/disk/{name}.work"
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    # After a power off the previous mount may take a moment to be released by the kernel.
    for attempt in range(50):
        result = subprocess.run(
            ["mount", "-t", "overlay", f"lab-{name}", "-o", options, target],
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if result.returncode == 0:
            return
        time.sleep(0.05)
    raise SystemExit(f"node-init: cannot mount overlay on {target}: {result.stderr.strip()}")


def build_filesystem(boot):
    node_dir = boot["node_dir"]
    # Drop this namespace's copies of the netns bind mounts: they would pin other nodes' and other
    # labs' network namespaces (propagation is private here, so root is not affected).
    if os.path.ismount("/run/netns"):
        run("umount", "-l", "/run/netns")
    for name, lower, target in boot["overlays"]:
        mount_overlay(name, lower, target, node_dir)
    for source, target in boot.get("binds", []):
        os.makedirs(target, exist_ok=True)
        run("mount", "--bind", source, target)
    run("mount", "-t", "tmpfs", "-o", "mode=755,size=256m", "lab-run", "/run")
    os.makedirs("/run/lab-node/cgroup")
    # A sysfs mounted from inside the netns shows only the node's interfaces; keep the host's
    # cgroup tree under it.
    run("mount", "--rbind", "/sys/fs/cgroup", "/run/lab-node/cgroup")
    run("mount", "-t", "sysfs", "lab-sys", "/sys")
    run("mount", "--move", "/run/lab-node/cgroup", "/sys/fs/cgroup")
    os.rmdir("/run/lab-node/cgroup")
    run("mount", "-t", "proc", "lab-proc", "/proc")
    run("mount", "--bind", boot["systemctl"], "/usr/bin/systemctl")
    os.makedirs("/run/sshd", mode=0o755)
    os.makedirs("/run/systemd/system")  # sd_booted() canary: tools then talk to "systemd"
    with open("/run/lab-node/name", "w") as f:
        f.write(boot["name"] + "\n")


SYSCTL_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d")
# Keys that belong to the node's network namespace. Every other key is kernel-wide: writing it from
# a node would change the host, so it is skipped (and logged).
PER_NODE_SYSCTL = re.compile(r"net\.ipv4\.(ip_forward|ip_nonlocal_bind|conf\.[^.]+\.[a-z0-9_]+)"
                             r"|net\.ipv6\.(ip_nonlocal_bind|conf\.[^.]+\.[a-z0-9_]+)")


def sysctl_settings():
    """(key, value, ignore_errors) from the sysctl.d files, in systemd-sysctl's order: files sorted by
    name, a file in an earlier directory masking a same-named one in a later directory."""
    files = {}
    for directory in SYSCTL_DIRS:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            if name.endswith(".conf"):
                files.setdefault(name, os.path.join(directory, name))
    settings = []
    for name in sorted(files):
        try:
            with open(files[name]) as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        for line in lines:
            line = line.strip()
            if not line or line[0] in "#;" or "=" not in line:
                continue
            key, value = (part.strip() for part in line.split("=", 1))
            ignore = key.startswith("-")
            settings.append((key.lstrip("-").replace("/", "."), value, ignore))
    return settings


def apply_sysctls(log_path):
    """systemd-sysctl at boot, for the keys of the node's own network stack."""
    with open(log_path, "a") as log:
        for key, value, _ in sysctl_settings():
            if not PER_NODE_SYSCTL.fullmatch(key):
                log.write(f"skipped {key} (not per node)\n")
                continue
            try:
                with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
                    f.write(value + "\n")
                log.write(f"applied {key} = {value}\n")
            except OSError as exc:
                log.write(f"failed {key} = {value}: {exc.strerror}\n")


def start_sshd(log_path):
    return subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-f", "/etc/ssh/sshd_config", "-E", log_path],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def main():
    with open(sys.argv[1]) as f:
        boot = json.load(f)
    # Before /proc is replaced, /proc/self still names this process in the host PID namespace.
    host_pid = int(os.readlink("/proc/self"))
    with open("/proc/self/comm", "w") as comm:
        comm.write("systemd")  # Ansible's service_mgr fact reads /proc/1/comm
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    build_filesystem(boot)
    import socket

    socket.sethostname(boot["name"])
    os.chdir("/")
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}
    os.environ.clear()
    os.environ.update(env)
    apply_sysctls(f"{boot['node_dir']}/log/sysctl.log")
    sshd_log = f"{boot['node_dir']}/log/sshd.log"
    sshd = start_sshd(sshd_log)
    # Start the units the node has enabled (as systemd does at boot); the stand-in records them.
    subprocess.run(["/usr/bin/systemctl", "--lab-boot"], stdin=subprocess.DEVNULL)
    with open(f"{boot['node_dir']}/run/init.pid.tmp", "w") as f:
        f.write(f"{host_pid}\n")
    os.rename(f"{boot['node_dir']}/run/init.pid.tmp", f"{boot['node_dir']}/run/init.pid")
    # Become a small reaper: a fresh interpreter without this module's imports halves PID 1's memory.
    # PID 1 and its children (sshd, services) stay as they are across exec.
    os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", REAPER, str(sshd.pid), sshd_log])


# PID 1 after boot: reap orphans; restart sshd if it dies; SIGTERM ends the node.
REAPER = """
import os, signal, sys, time
with open("/proc/self/comm", "w") as comm:
    comm.write("systemd")  # Ansible's service_mgr fact reads /proc/1/comm
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
signal.signal(signal.SIGINT, lambda *_: os._exit(0))
sshd = int(sys.argv[1])
argv = ["/usr/sbin/sshd", "-D", "-f", "/etc/ssh/sshd_config", "-E", sys.argv[2]]
while True:
    try:
        pid, _ = os.wait()
    except ChildProcessError:
        time.sleep(1)
        continue
    if pid == sshd:
        time.sleep(%r)
        sshd = os.fork()
        if sshd == 0:
            os.setsid()
            os.execv(argv[0], argv)
""" % SSHD_RESTART_DELAY


if __name__ == "__main__":
    main()
