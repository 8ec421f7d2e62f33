"""PID 1 of a lab node ("power on" of a node).

Started by the controller as
    nsenter --net=/run/netns/<ns> unshare --mount --uts --pid --fork --propagation private \
        /usr/bin/python3 -I -S node_init.py <node dir>/boot.json
so it runs in the node's network namespace and in a fresh mount, UTS and PID namespace. It builds
the node's private file system (overlays on /etc, /var/lib, /var/log, /root, /usr/local/bin,
tmpfs /run, own /proc and /sys), sets the hostname, starts sshd and the enabled units (through the
systemctl stand-in), then reaps orphans like an init. SIGTERM or SIGKILL ends the node: the kernel
kills every process of the PID namespace with it. Standard library only; runs with Debian's python3.
"""

import json
import os
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
