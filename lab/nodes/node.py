"""The lab's nodes: a disk of overlays, a network namespace with a port on the lab bridge, a PID 1
(pid1.py) with sshd and the systemctl stand-in (shims/systemctl), power off/on and isolate/rejoin.

`Nodes` is a part of `lab.core.Lab` (it uses the lab's plan, state dir, runtime and node software); what
a real node has on top (containerd, the kubelet, the pin's images) is in real.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

from ..plan import Node, NodePlan
from ..system import LabError, pid_alive as _pid_alive, run as _run
from . import containerd_seed, real as realnode

HERE = Path(__file__).resolve().parent
NODE_INIT = HERE / "pid1.py"
SYSTEMCTL_SHIM = HERE / "shims" / "systemctl"
NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Host paths a fresh node must not see (hidden by a whiteout in its /var/lib overlay).
HOST_STATE_HIDDEN = ("/var/lib/etcd", "/var/lib/kubelet")
# Paths of a node that live in its own overlay: node path -> overlay name (upper dir under disk/).
OVERLAY_DIRS = {"/etc": "etc", "/var/lib": "varlib", "/var/log": "varlog", "/root": "root", "/usr/local/bin": "usrlocalbin"}
BOOT_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def _whiteout(path: Path) -> None:
    """Hide a lower-layer file in an overlay (a 0/0 character device in the upper dir)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(0, 0))


def _opaque_dir(path: Path) -> None:
    """Hide a lower-layer directory's content in an overlay."""
    path.mkdir(parents=True, exist_ok=True)
    os.setxattr(path, "trusted.overlay.opaque", b"y")


class Nodes:
    """The node half of a Lab: needs self.plan, self.state_dir, self.runtime, self.node_software,
    self.components, self._unshare_procs."""

    def _node_dir(self, node: Node | str) -> Path:
        return self.state_dir / "nodes" / str(node)

    def _init_pid(self, node: Node | str) -> int | None:
        """Host PID of the node's PID 1, if the node is powered on."""
        try:
            pid = int((self._node_dir(node) / "run" / "init.pid").read_text())
        except (FileNotFoundError, ValueError):
            return None
        netns = Path("/run/netns") / self.plan.node(str(node)).netns
        try:  # guard against PID reuse: the process must be in the node's network namespace
            if os.stat(f"/proc/{pid}/ns/net").st_ino != os.stat(netns).st_ino or not _pid_alive(pid):
                return None
        except (FileNotFoundError, ProcessLookupError):
            return None
        return pid

    def is_running(self, node: Node | str) -> bool:
        return self._init_pid(node) is not None

    def node_file(self, node: Node | str, path: str) -> Path:
        """Where the controller can read `path` of a node (read-only use).

        While the node runs, this is the path through the node's root (any node path works); when it
        is powered off, the file in its overlay disk (for /etc, /var/lib, /var/log, /root,
        /usr/local/bin).
        """
        if not path.startswith("/"):
            raise LabError(f"node path {path!r} must be absolute")
        pid = self._init_pid(node)
        if pid is not None:
            return Path(f"/proc/{pid}/root") / path.lstrip("/")
        for prefix, overlay in sorted(OVERLAY_DIRS.items(), key=lambda kv: -len(kv[0])):
            if path == prefix or path.startswith(prefix + "/"):
                return self._node_dir(node) / "disk" / overlay / path[len(prefix) :].lstrip("/")
        raise LabError(f"node {node} is powered off and {path} is not on its disk")

    def containerd_log(self, node: Node | str) -> Path:
        """Where the controller reads the node's containerd log (its /var/log/lab/containerd.service.log, kept
        across power cycles; see node_file)."""
        return self.node_file(node, realnode.CONTAINERD_LOG)

    def image_pulls(self, node: Node | str) -> list[str]:
        """The reference of every image the node's containerd was asked to pull through the CRI (kubelet,
        kubeadm, crictl) since its disk was made, from its log: [] proves that no image came from a
        registry. A node whose containerd never logged at info level is an error, not []."""
        path = self.containerd_log(node)
        try:
            return realnode.image_pulls(path.read_text(errors="replace"))
        except (FileNotFoundError, ValueError) as exc:
            raise LabError(f"containerd log of node {node} ({path}): {exc}") from None

    def _software_up(self, plan: NodePlan) -> None:
        """containerd answering; on installed nodes, the pin's images imported."""

        def argv(command):
            return self._exec_argv(plan.node, command)

        try:
            realnode.wait_containerd(argv, plan.node.name)
            if self.node_software == "installed" and not (self._node_dir(plan.node) / "containerd-seed").exists():
                realnode.import_images(argv, plan.node.name, self.components.images)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            raise LabError(str(exc)) from None

    def _plant_containerd_seed(self, node_dir: Path) -> None:
        """The node's containerd starts with the pin's images from the seed (containerd_seed.py) when the seed
        and the node are on one file system (hard links); otherwise _software_up imports them."""
        from ..components.build import cache_root

        try:
            seed = containerd_seed.ensure_seed(self.components.images, cache_root())
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            raise LabError(f"the containerd seed of the pin's images: {exc}") from None
        if os.stat(seed).st_dev != os.stat(node_dir).st_dev:
            return
        containerd_seed.plant(seed, node_dir / "containerd")
        (node_dir / "containerd-seed").write_text(f"{seed}\n")  # _software_up imports nothing then

    def _prepare_disk(self, plan: NodePlan) -> None:
        """Write the node's first-boot files straight into its overlay upper dirs."""
        node = plan.node
        node_dir = self._node_dir(node)
        disk = node_dir / "disk"
        for overlay in OVERLAY_DIRS.values():
            (disk / overlay).mkdir(parents=True, exist_ok=True)
            (disk / f"{overlay}.work").mkdir(exist_ok=True)
        for sub in ("run", "log"):
            (node_dir / sub).mkdir(exist_ok=True)
        etc = disk / "etc"
        (etc / "hostname").write_text(node.name + "\n")
        hosts = "".join(f"{n.address}\t{n.name}\n" for n in self.nodes)
        (etc / "hosts").write_text(f"127.0.0.1\tlocalhost\n127.0.1.1\t{node.name}\n::1\tlocalhost ip6-localhost\n{hosts}")
        # The lab's DNS: the lab's names answer, every other name fails at once and nothing leaves the
        # lab (a node's own loopback would make CoreDNS detect a loop).
        (etc / "resolv.conf").write_text(f"nameserver {self.plan.dns_address}\n")
        (etc / "machine-id").write_text(secrets.token_hex(16) + "\n")
        ssh = etc / "ssh"
        ssh.mkdir()
        for host_key in Path("/etc/ssh").glob("ssh_host_*"):
            _whiteout(ssh / host_key.name)
        (ssh / "ssh_host_ed25519_key").unlink()
        (ssh / "ssh_host_ed25519_key.pub").unlink(missing_ok=True)
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{node.name}",
              "-f", str(ssh / "ssh_host_ed25519_key")])  # fmt: skip
        (ssh / "sshd_config").write_text(
            f"# lab node {node.name}: key-only root login on the node address\n"
            f"ListenAddress {node.address}\n"
            "HostKey /etc/ssh/ssh_host_ed25519_key\n"
            "PidFile /run/sshd.pid\n"
            "UsePAM no\n"
            "PermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "UseDNS no\n"
            "PrintMotd no\n"
            "MaxStartups 100:30:200\n"
            "MaxSessions 50\n"
            "AcceptEnv LANG LC_*\n"
            "Subsystem sftp /usr/lib/openssh/sftp-server\n"
        )
        # A fresh node has no units enabled: hide the host's *.wants links (etcd, postgresql, ...).
        units = etc / "systemd" / "system"
        units.mkdir(parents=True)
        for wants in Path("/etc/systemd/system").glob("*.wants"):
            _opaque_dir(units / wants.name)
        # A fresh node has no Kubernetes or etcd state, whatever the host has: a host's etcd package
        # makes /var/lib/etcd, and files appearing there later (the lower layer is live) would fail
        # kubeadm's DirAvailable--var-lib-etcd check in every node.
        for hidden in HOST_STATE_HIDDEN:
            if Path(hidden).exists():
                _whiteout(disk / OVERLAY_DIRS["/var/lib"] / Path(hidden).relative_to("/var/lib"))
        _opaque_dir(etc / "kubernetes")
        if self.runtime == "real":
            realnode.write_first_boot_files(etc, realnode.cgroup_root(plan.netns), self.node_software == "installed")
            realnode.create_cgroups(realnode.cgroup_root(plan.netns))
            (node_dir / "containerd").mkdir(exist_ok=True)
            if self.node_software == "installed":
                self._plant_containerd_seed(node_dir)
        else:
            _opaque_dir(etc / "containerd")  # a bare node has no containerd (the host's config is hidden)
        root = disk / "root"
        (root / ".ssh").mkdir(mode=0o700)
        shutil.copy(self.state_dir / "keys" / "id_ed25519.pub", root / ".ssh" / "authorized_keys")
        (root / ".ssh" / "authorized_keys").chmod(0o600)
        for skel in (".bashrc", ".profile"):
            if Path("/etc/skel", skel).exists():
                shutil.copy(Path("/etc/skel", skel), root / skel)
        (node_dir / "boot.json").write_text(
            json.dumps(
                {
                    "name": node.name,
                    "node_dir": str(node_dir),
                    # [overlay name, lower dir, mount point]; a fresh node's /root and /usr/local/bin
                    # do not show the host's (wrappers: the pin's binaries, or nothing), its /etc,
                    # /var/lib and /var/log start as the host's.
                    "overlays": [
                        ["etc", "/etc", "/etc"],
                        ["varlib", "/var/lib", "/var/lib"],
                        ["varlog", "/var/log", "/var/log"],
                        ["root", str(self.state_dir / "empty"), "/root"],
                        ["usrlocalbin", str(self.state_dir / "wrappers"), "/usr/local/bin"],
                    ],
                    "systemctl": str(SYSTEMCTL_SHIM),
                    # [source, mount point]: plain directories where an overlay does not do
                    "binds": [[str(node_dir / "containerd"), "/var/lib/containerd"]] if self.runtime == "real" else [],
                }
            )
            + "\n"
        )

    def _node_up(self, plan: NodePlan) -> None:
        self._prepare_disk(plan)
        self._network_namespace_up(plan)
        self._power_on(plan)

    def _network_namespace_up(self, plan: NodePlan) -> None:
        """A new network namespace with the node's boot network: lo, and eth0 (its port on the lab
        bridge) with only the node's address and a default route via the controller (none for bare
        nodes: an address outside the lab is unreachable)."""
        ns = ["ip", "-n", plan.netns]
        _run(["ip", "netns", "add", plan.netns])
        _run(["ip", "link", "add", plan.veth, "type", "veth", "peer", "name", "eth0", "netns", plan.netns])
        _run(["ip", "link", "set", plan.veth, "master", self.plan.bridge])
        if not (self._node_dir(plan.node) / "isolated").exists():
            _run(["ip", "link", "set", plan.veth, "up"])
        _run([*ns, "link", "set", "lo", "up"])
        _run([*ns, "link", "set", "eth0", "address", plan.mac, "up"])
        _run([*ns, "addr", "add", f"{plan.node.address}/{self.plan.prefixlen}", "dev", "eth0"])
        # kubeadm and kube-vip pick the default-route interface; root has ip_forward=0, so the route
        # leads nowhere beyond the controller. Bare nodes are air-gapped: the inventory names both.
        if self.node_software == "installed":
            _run([*ns, "route", "add", "default", "via", self.controller_address])
        if plan.node.address6:
            # nodad: lab addresses are unique by construction, and DAD would hold the address back 1-2 s.
            _run([*ns, "addr", "add", f"{plan.node.address6}/{self.plan.subnet6.prefixlen}", "dev", "eth0", "nodad"])
            if self.node_software == "installed":  # as for IPv4: a way out that leads nowhere past the controller
                _run([*ns, "-6", "route", "add", "default", "via", self.plan.controller_address6])

    def _network_namespace_down(self, plan: NodePlan) -> None:
        if Path("/sys/class/net", plan.veth).exists():
            _run(["ip", "link", "del", plan.veth])
        if Path("/run/netns", plan.netns).exists():
            _run(["ip", "netns", "del", plan.netns])

    def _power_on(self, plan: NodePlan) -> None:
        node_dir = self._node_dir(plan.node)
        (node_dir / "run" / "init.pid").unlink(missing_ok=True)
        log = open(node_dir / "log" / "init.log", "ab")
        with log:
            proc = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{plan.netns}", "unshare", "--mount", "--uts", "--pid", "--fork",
                 "--propagation", "private", "/usr/bin/python3", "-I", "-S", str(NODE_INIT),
                 str(node_dir / "boot.json")],  # fmt: skip
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self._unshare_procs[plan.node.name] = proc
        (node_dir / "run" / "unshare.pid").write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + BOOT_TIMEOUT
        while self._init_pid(plan.node) is None:
            if proc.poll() is not None:
                raise LabError(f"node {plan.node.name} did not boot (rc {proc.returncode}); see {node_dir}/log/init.log")
            if time.monotonic() > deadline:
                raise LabError(f"node {plan.node.name} did not boot within {BOOT_TIMEOUT:.0f} s; see {node_dir}/log")
            time.sleep(0.01)

    def _controller_known_hosts(self) -> None:
        lines = []
        for plan in self.plan.nodes:
            key = (self._node_dir(plan.node) / "disk" / "etc" / "ssh" / "ssh_host_ed25519_key.pub").read_text()
            key_type, key_data = key.split()[:2]
            lines.append(f"{plan.node.address},{plan.node.name} {key_type} {key_data}\n")
        (self.state_dir / "known_hosts").write_text("".join(lines))

    def _wait_ssh(self, nodes: list[Node], timeout: float = BOOT_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        for node in nodes:
            while True:
                try:
                    with socket.create_connection((node.address, 22), timeout=0.5) as conn:
                        conn.settimeout(max(deadline - time.monotonic(), 0.5))
                        if conn.recv(4).startswith(b"SSH-"):
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise LabError(f"sshd of node {node.name} ({node.address}) did not answer within {timeout:.0f} s")
                time.sleep(0.02)

    def exec(
        self,
        node: Node | str,
        argv: list[str],
        check: bool = True,
        timeout: float | None = 60,
        input: str | None = None,
    ) -> subprocess.CompletedProcess:
        """Run argv inside the node (all its namespaces, a clean root login environment)."""
        return subprocess.run(
            self._exec_argv(node, argv),
            input=input,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
            stdin=None if input is not None else subprocess.DEVNULL,
        )

    def _exec_argv(self, node: Node | str, argv: list[str], env: dict[str, str] | None = None) -> list[str]:
        pid = self._init_pid(node)
        if pid is None:
            raise LabError(f"node {node} of lab {self.name!r} is not running (powered off or lab down)")
        environment = {"PATH": NODE_PATH, "HOME": "/root", "LANG": "C.UTF-8", "TERM": os.environ.get("TERM", "dumb")}
        environment.update(env or {})
        return [
            "nsenter", f"--target={pid}", "--mount", "--uts", "--net", "--pid", "--wd=/",
            "env", "-i", *(f"{k}={v}" for k, v in environment.items()), *argv,
        ]  # fmt: skip

    def stop(self, node: Node | str) -> None:
        """Power the node off: every process of the node ends at once, its link goes down."""
        plan = self.plan.node(str(node))
        self._kill_node(plan)
        _run(["ip", "link", "set", plan.veth, "down"])

    def start(self, node: Node | str) -> None:
        """Power the node on: link up (unless isolated), boot from its disk, sshd and enabled units."""
        plan = self.plan.node(str(node))
        if self.is_running(plan.node):
            return
        # A reboot starts from a clean network stack: run-time addresses (a VIP a killed kube-vip
        # left), links, routes, neighbours, sysctls and firewall rules are gone. A new namespace
        # is exactly that; PID 1 then applies the node's /etc/sysctl.d as systemd-sysctl does.
        self._network_namespace_down(plan)
        self._network_namespace_up(plan)
        self._power_on(plan)
        if not (self._node_dir(plan.node) / "isolated").exists():
            self._wait_ssh([plan.node])

    def isolate(self, node: Node | str) -> None:
        """Cut the node's network (its switch port goes down); it keeps running."""
        plan = self.plan.node(str(node))
        (self._node_dir(plan.node) / "isolated").touch()
        _run(["ip", "link", "set", plan.veth, "down"])

    def rejoin(self, node: Node | str) -> None:
        """Restore the network of an isolated node."""
        plan = self.plan.node(str(node))
        (self._node_dir(plan.node) / "isolated").unlink(missing_ok=True)
        if self.is_running(plan.node):
            _run(["ip", "link", "set", plan.veth, "up"])
            self._wait_link_up(plan)

    @staticmethod
    def _wait_link_up(plan: NodePlan, timeout: float = 5.0) -> None:
        operstate = Path("/sys/class/net", plan.veth, "operstate")
        deadline = time.monotonic() + timeout
        while operstate.read_text().strip() != "up":
            if time.monotonic() > deadline:
                raise LabError(f"the link of node {plan.node.name} ({plan.veth}) did not come up")
            time.sleep(0.01)

    def _kill_node(self, plan: NodePlan) -> None:
        """End every process of the node, by PID: its PID 1 (the kernel then ends the PID namespace),
        then anything else found in its network namespace."""
        run_dir = self._node_dir(plan.node) / "run"
        pid = self._init_pid(plan.node)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # The `unshare` parent of PID 1 reaps it and then exits by itself: leave it time to do so.
        try:
            unshare_pid = int((run_dir / "unshare.pid").read_text())
        except (FileNotFoundError, ValueError):
            unshare_pid = None
        deadline = time.monotonic() + STOP_TIMEOUT
        while True:
            pids = [p for p in self._netns_pids(plan.netns) if _pid_alive(p)]
            if pid is not None and _pid_alive(pid):
                pids.append(pid)
            if not [p for p in pids if p != unshare_pid]:
                break
            if time.monotonic() > deadline:
                raise LabError(f"processes {pids} of node {plan.node.name} did not end")
            for p in pids:
                if p not in (pid, unshare_pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p, signal.SIGKILL)
            time.sleep(0.02)
        proc = self._unshare_procs.pop(plan.node.name, None)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=STOP_TIMEOUT)
        (run_dir / "init.pid").unlink(missing_ok=True)
        (run_dir / "unshare.pid").unlink(missing_ok=True)

    @staticmethod
    def _netns_pids(netns: str) -> list[int]:
        if not Path("/run/netns", netns).exists():
            return []
        result = _run(["ip", "netns", "pids", netns], check=False)
        return [int(p) for p in result.stdout.split()]

    def _node_down(self, plan: NodePlan) -> None:
        self._kill_node(plan)
        self._network_namespace_down(plan)
        left = realnode.remove_cgroups(realnode.cgroup_root(plan.netns))
        if left:
            raise LabError(f"cgroups of node {plan.node.name} could not be removed: {', '.join(left)}")

    def status(self) -> list[dict]:
        rows = []
        for plan in self.plan.nodes:
            running = self.is_running(plan.node)
            isolated = (self._node_dir(plan.node) / "isolated").exists()
            rows.append(
                {
                    "name": plan.node.name,
                    "address": plan.node.address,
                    **({"address6": plan.node.address6} if plan.node.address6 else {}),
                    "role": plan.node.role,
                    "state": ("running" if running else "stopped") + (", isolated" if isolated else ""),
                    "pid": self._init_pid(plan.node),
                }
            )
        return rows
