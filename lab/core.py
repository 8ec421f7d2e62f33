"""The lab: fake bare-metal nodes from Linux namespaces, reached over real SSH.

`Lab` is the Python API (also used by `python -m lab`). Controller side: Python standard library
only. Every global name it creates is derived from the lab name (see plan.py); everything else lives
in its state directory.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

from . import realnode
from .plan import GUARD_ROUTE_METRIC, LabPlan, Node, NodePlan, PlanError, make_plan, overlapping_routes

REPO_ROOT = Path(__file__).resolve().parent.parent
NODE_INIT = Path(__file__).resolve().parent / "node_init.py"
SYSTEMCTL_SHIM = Path(__file__).resolve().parent / "shims" / "systemctl"
GLOBAL_LOCK = Path("/run/vipadm-lab.lock")  # serialises the subnet check and network set-up of all labs
NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DNS_SERVER = Path(__file__).resolve().parent / "network" / "dns.py"
# real: nodes with containerd and the Kubernetes programs built by lab/components (images imported);
# bare: nodes with sshd and the systemctl stand-in only, for tests of the lab itself.
RUNTIMES = ("real", "bare")
# Paths of a node that live in its own overlay: node path -> overlay name (upper dir under disk/).
HOST_STATE_HIDDEN = ("/var/lib/etcd", "/var/lib/kubelet")
OVERLAY_DIRS = {"/etc": "etc", "/var/lib": "varlib", "/var/log": "varlog", "/root": "root", "/usr/local/bin": "usrlocalbin"}
BOOT_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

# Classic BPF for a tc direct-action filter on the bridge's ingress, i.e. on what nodes send to the
# controller's namespace (traffic between nodes is switched and never passes there). It drops
# everything except ARP, ICMP other than echo requests, and TCP segments that are not a bare SYN:
# nodes can answer the controller but cannot open connections to any address of its namespace.
# Made with: tcpdump -y EN10MB -ddd 'not (arp or (ip and icmp and icmp[icmptype] != icmp-echo)
#   or (ip and tcp and tcp[tcpflags] & (tcp-syn|tcp-ack) != tcp-syn))'
# with "ret #262144" (match) turned into "ret #2" (TC_ACT_SHOT) and "ret #0" meaning TC_ACT_OK.
# (This kernel has cls_bpf but neither the gact action module nor nftables.)
CONTROLLER_GUARD_BPF = (
    "19,40 0 0 12,21 15 0 2054,21 0 15 2048,48 0 0 23,21 0 5 1,40 0 0 20,69 11 0 8191,177 0 0 14,"
    "80 0 0 14,21 8 7 8,21 0 7 6,40 0 0 20,69 5 0 8191,177 0 0 14,80 0 0 27,84 0 0 18,21 1 0 2,"
    "6 0 0 0,6 0 0 2"
)



class LabError(RuntimeError):
    """The lab cannot do what was asked; the message says why and what to do."""


def _pins():
    from .components import load_pins

    return load_pins()


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def _run(argv: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed (rc {result.returncode}): {result.stderr.strip()}")
    return result


@contextlib.contextmanager
def _global_lock():
    with open(GLOBAL_LOCK, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _whiteout(path: Path) -> None:
    """Hide a lower-layer file in an overlay (a 0/0 character device in the upper dir)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(0, 0))


def _opaque_dir(path: Path) -> None:
    """Hide a lower-layer directory's content in an overlay."""
    path.mkdir(parents=True, exist_ok=True)
    os.setxattr(path, "trusted.overlay.opaque", b"y")


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def real_preflight() -> None:
    """Fail with a clear sentence when this machine cannot run real nodes."""
    missing = [
        package
        for path, package in (
            ("/usr/bin/containerd", "containerd"),
            ("/usr/sbin/runc", "runc"),
            ("/usr/lib/cni/bridge", "containernetworking-plugins"),
            ("/usr/sbin/conntrack", "conntrack"),
            ("/usr/sbin/iptables", "iptables"),
        )
        if not Path(path).exists()
    ]
    if missing:
        raise LabError(f"cannot bring a real lab up: apt-get install {' '.join(missing)} (or run scripts/setup.sh)")


def preflight() -> None:
    """Fail with a clear sentence when this machine cannot run the lab."""
    problems = []
    if os.geteuid() != 0:
        problems.append("the lab must run as root (it creates namespaces, links and mounts)")
    if not Path("/etc/debian_version").exists():
        problems.append("the lab supports Debian-like systems only (no /etc/debian_version)")
    for tool, package in (
        ("ip", "iproute2"),
        ("tc", "iproute2"),
        ("nsenter", "util-linux"),
        ("unshare", "util-linux"),
        ("mount", "mount"),
        ("ssh", "openssh-client"),
        ("ssh-keygen", "openssh-client"),
    ):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            problems.append(f"{tool} is missing: apt-get install {package}")
    if not Path("/usr/sbin/sshd").exists():
        problems.append("/usr/sbin/sshd is missing: apt-get install openssh-server")
    if not Path("/usr/bin/python3").exists():
        problems.append("/usr/bin/python3 is missing: apt-get install python3")
    if not Path("/usr/bin/systemctl").exists():
        problems.append("/usr/bin/systemctl is missing (the lab binds its stand-in over it): apt-get install systemd")
    for ns in ("net", "mnt", "uts", "pid"):
        if not Path(f"/proc/self/ns/{ns}").exists():
            problems.append(f"the kernel has no {ns} namespaces")
    if problems:
        raise LabError("cannot bring the lab up: " + "; ".join(problems) + ".")


class Lab:
    """A set of nodes (namespaces + sshd) on one bridge, with its state in `state_dir`."""

    def __init__(
        self,
        name: str = "vipadm",
        state_dir: Path | str | None = None,
        subnet: str = "198.51.100.0/24",
        control_planes: int = 3,
        workers: int = 0,
        kubernetes_version: str | None = None,
        runtime: str = "real",
        kube_vip_version: str | None = None,
    ):
        if runtime not in RUNTIMES:
            raise PlanError(f"runtime {runtime!r} is not one of {', '.join(RUNTIMES)}")
        self.plan: LabPlan = make_plan(name, subnet, control_planes, workers)
        self.state_dir = Path(state_dir if state_dir is not None else REPO_ROOT / ".lab").absolute()
        self.runtime = runtime
        real = runtime == "real"
        self.kubernetes_version = kubernetes_version or (_pins().default_kubernetes if real else "")
        self.kube_vip_version = kube_vip_version or (_pins().default_kube_vip if real else "")
        self.components = None  # the PinBuild of a real lab, once up() has it
        self._unshare_procs: dict[str, subprocess.Popen] = {}

    # ---- loading and saving -------------------------------------------------------------------

    @classmethod
    def load(cls, state_dir: Path | str) -> "Lab":
        """The lab whose state is in state_dir (as written by `up`)."""
        path = Path(state_dir).absolute() / "lab.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise LabError(f"no lab is up with state in {path.parent} (no lab.json): run `up` first") from None
        return cls(
            name=data["name"],
            state_dir=path.parent,
            subnet=data["subnet"],
            control_planes=data["control_planes"],
            workers=data["workers"],
            kubernetes_version=data["kubernetes_version"],
            runtime=data.get("runtime", "real"),
            kube_vip_version=data.get("kube_vip_version"),
        )

    def _save(self) -> None:
        data = {
            "name": self.name,
            "subnet": str(self.plan.subnet),
            "control_planes": sum(1 for n in self.nodes if n.role == "control_plane"),
            "workers": sum(1 for n in self.nodes if n.role == "worker"),
            "kubernetes_version": self.kubernetes_version,
            "runtime": self.runtime,
            "kube_vip_version": self.kube_vip_version,
        }
        (self.state_dir / "lab.json").write_text(json.dumps(data, indent=2) + "\n")

    # ---- public properties ---------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def nodes(self) -> list[Node]:
        return [p.node for p in self.plan.nodes]

    @property
    def vip(self) -> str:
        return self.plan.vip

    @property
    def controller_address(self) -> str:
        return self.plan.controller_address

    @property
    def inventory_path(self) -> Path:
        return self.state_dir / "inventory"

    @property
    def ssh_config_path(self) -> Path:
        return self.state_dir / "ssh_config"

    def node(self, node: Node | str) -> Node:
        return self.plan.node(str(node)).node

    # ---- paths ---------------------------------------------------------------------------------

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

    def admin_kubeconfig(self) -> Path:
        """A copy (0600, in the state dir) of the admin.conf of the first running control plane that has
        one: its server is the cluster's endpoint, the VIP, which the controller reaches."""
        if self.runtime != "real":
            raise LabError(f"lab {self.name!r} has bare nodes: only a real lab has a cluster a kubectl can talk to")
        for node in self.nodes:
            if node.role == "control_plane" and self.is_running(node):
                source = self.node_file(node, "/etc/kubernetes/admin.conf")
                if source.exists():
                    target = self.state_dir / "admin.conf"
                    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    with os.fdopen(fd, "w") as f:
                        f.write(source.read_text())
                    return target
        raise LabError(f"no running control plane of lab {self.name!r} has /etc/kubernetes/admin.conf: bootstrap it first")

    # ---- up ------------------------------------------------------------------------------------

    def up(self, log=None) -> None:
        """Create the network, the nodes and the controller's SSH/Ansible settings. A real lab first
        builds (or takes from the cache) its components, puts their images in every node and runs the
        pod network agent; a bare lab's nodes have sshd and the systemctl stand-in only."""
        preflight()
        if self.runtime == "real":
            real_preflight()
            from .components import Builder

            self.components = Builder(log=log or (lambda line: None)).build_pin(self.kubernetes_version, self.kube_vip_version)
        with _global_lock():
            self._check_free()
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._save()
            try:
                self._network_up()
            except BaseException:
                self.down()
                raise
        try:
            self._controller_files_up()
            with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(self._node_up, self.plan.nodes))
            self._controller_known_hosts()
            self._wait_ssh([p.node for p in self.plan.nodes])
            if self.runtime == "real":
                with concurrent.futures.ThreadPoolExecutor(max_workers=len(self.plan.nodes)) as pool:
                    list(pool.map(self._import_images, self.plan.nodes))
                self._start_service("pods-agent", [sys.executable, "-m", "lab.network.pods", str(self.state_dir)])
        except BaseException:
            self.down()
            raise

    def _import_images(self, plan: NodePlan) -> None:
        def argv(command):
            return self._exec_argv(plan.node, command)

        try:
            realnode.wait_containerd(argv, plan.node.name)
            realnode.import_images(argv, plan.node.name, self.components.images)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            raise LabError(str(exc)) from None

    def _start_service(self, name: str, argv: list[str], netns: str | None = None) -> None:
        """A lab service process (DNS, pods agent), ended by PID at down."""
        prefix = ["ip", "netns", "exec", netns] if netns else []
        run_dir = self.state_dir / "run"
        run_dir.mkdir(exist_ok=True)
        with open(self.state_dir / "run" / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                [*prefix, *argv], cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
            )
        (run_dir / f"{name}.pid").write_text(f"{proc.pid} {_start_time(proc.pid)}\n")

    def _stop_service(self, name: str) -> None:
        pid_file = self.state_dir / "run" / f"{name}.pid"
        try:
            pid_text, start = pid_file.read_text().split()
            pid = int(pid_text)
        except (FileNotFoundError, ValueError):
            return
        if _start_time(pid) == start:  # the same process, not a reused PID
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + STOP_TIMEOUT
            while _pid_alive(pid) and time.monotonic() < deadline:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
                time.sleep(0.02)
        pid_file.unlink(missing_ok=True)

    def _check_free(self) -> None:
        if (self.state_dir / "lab.json").exists():
            raise LabError(
                f"a lab already has its state in {self.state_dir}: run `down` first (or choose another --state-dir)"
            )
        taken = [p.netns for p in self.plan.nodes if Path("/run/netns", p.netns).exists()]
        if taken or Path("/sys/class/net", self.plan.bridge).exists():
            raise LabError(
                f"a lab named {self.name!r} is already up on this machine (bridge {self.plan.bridge} or "
                f"namespaces {', '.join(taken)} exist): choose another --name or bring that lab down"
            )
        routes = json.loads(_run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout or "[]")
        clashes = overlapping_routes(self.plan.subnet, routes)
        if clashes:
            raise LabError(
                f"subnet {self.plan.subnet} overlaps existing route(s) of this machine: {'; '.join(clashes)}. "
                "Choose a subnet no interface, route or other lab uses (--subnet); nothing was changed"
            )

    def _network_up(self) -> None:
        plan = self.plan
        subnet = str(plan.subnet)
        # Guard: if the bridge route ever goes, lab traffic hits "unreachable", not the default route.
        _run(["ip", "route", "add", "unreachable", subnet, "metric", str(GUARD_ROUTE_METRIC)])
        _run(["ip", "link", "add", plan.bridge, "address", plan.bridge_mac, "type", "bridge",
              "stp_state", "0", "forward_delay", "0"])  # fmt: skip
        Path(f"/proc/sys/net/ipv6/conf/{plan.bridge}/disable_ipv6").write_text("1\n")
        _run(["ip", "addr", "add", f"{plan.controller_address}/{plan.prefixlen}", "dev", plan.bridge])
        _run(["tc", "qdisc", "add", "dev", plan.bridge, "clsact"])
        _run(["tc", "filter", "add", "dev", plan.bridge, "ingress", "prio", "1", "protocol", "all",
              "bpf", "bytecode", CONTROLLER_GUARD_BPF, "da"])  # fmt: skip
        _run(["ip", "link", "set", plan.bridge, "up"])
        self._dns_up()

    def _dns_up(self) -> None:
        """The lab's DNS in its own namespace on the bridge (nodes may not open connections to the
        controller's namespace; the guard filter drops them)."""
        plan = self.plan
        _run(["ip", "netns", "add", plan.dns_netns])
        _run(["ip", "link", "add", plan.dns_veth, "type", "veth", "peer", "name", "eth0", "netns", plan.dns_netns])
        _run(["ip", "link", "set", plan.dns_veth, "master", plan.bridge, "up"])
        ns = ["ip", "-n", plan.dns_netns]
        _run([*ns, "link", "set", "lo", "up"])
        _run([*ns, "link", "set", "eth0", "up"])
        _run([*ns, "addr", "add", f"{plan.dns_address}/{plan.prefixlen}", "dev", "eth0"])
        names = {node.name: node.address for node in self.nodes}
        names["controller"] = self.controller_address
        zone = self.state_dir / "dns.json"
        zone.write_text(json.dumps({"listen": plan.dns_address, "names": names}, indent=2) + "\n")
        self._start_service("dns", ["/usr/bin/python3", "-I", "-S", str(DNS_SERVER), str(zone)], netns=plan.dns_netns)

    def _dns_down(self) -> None:
        self._stop_service("dns")
        plan = self.plan
        if plan.dns_veth and Path("/sys/class/net", plan.dns_veth).exists():
            _run(["ip", "link", "del", plan.dns_veth], check=False)
        if plan.dns_netns and Path("/run/netns", plan.dns_netns).exists():
            _run(["ip", "netns", "del", plan.dns_netns], check=False)

    def _controller_files_up(self) -> None:
        state = self.state_dir
        for sub in ("keys", "cp", "nodes", "inventory/group_vars", "wrappers", "empty"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        (state / "cp").chmod(0o700)
        key = state / "keys" / "id_ed25519"
        if not key.exists():
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"lab-{self.name}-controller", "-f", str(key)])
        if self.runtime == "real":
            for tool in realnode.HOST_BINARIES:  # where the packages' binaries would be
                realnode.link_or_copy(self.components.binary(tool), state / "wrappers" / tool)
        self._write_ssh_config()

    def _write_ssh_config(self) -> None:
        state = self.state_dir
        key = state / "keys" / "id_ed25519"
        control_path = state / "cp" / "%h"
        if len(str(control_path)) + 13 > 100:
            raise LabError(f"state dir {state} is too long for ssh ControlPath sockets (max ~85 characters)")
        host_blocks = "".join(f"Host {n.name}\n  HostName {n.address}\n" for n in self.nodes)
        self.ssh_config_path.write_text(
            f"# lab {self.name}: ssh -F {self.ssh_config_path} <node>\n"
            f"{host_blocks}"
            "Host *\n"
            "  User root\n"
            f"  IdentityFile {key}\n"
            "  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {state}/known_hosts\n"
            "  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n"
            "  ControlMaster auto\n"
            f"  ControlPath {control_path}\n"
            "  ControlPersist 60s\n"
            "  ConnectTimeout 5\n"
            "  LogLevel ERROR\n"
        )
        self._write_inventory()

    def _write_inventory(self) -> None:
        common_args = f"-F {self.ssh_config_path} -o ControlPath={self.state_dir}/cp/%h"
        lines = [
            "---",
            f"# Written by `python -m lab up` for lab {self.name}.",
            "all:",
            "  vars:",
            "    ansible_user: root",
            "    ansible_python_interpreter: /usr/bin/python3",
            f'    ansible_ssh_common_args: "{common_args}"',
            "  children:",
        ]
        for group, role in (("control_plane", "control_plane"), ("workers", "worker")):
            members = [n for n in self.nodes if n.role == role]
            lines.append(f"    {group}:")
            if not members:
                lines.append("      hosts: {}")
                continue
            lines.append("      hosts:")
            for node in members:
                lines.append(f"        {node.name}:")
                lines.append(f"          ansible_host: {node.address}")
        (self.inventory_path / "hosts.yml").write_text("\n".join(lines) + "\n")
        (self.inventory_path / "group_vars" / "all.yml").write_text(
            "---\n"
            f"# Written by `python -m lab up` for lab {self.name}.\n"
            f"kube_vip_address: {self.vip}\n"
            + (f'vipadm_kubernetes_version: "{self.kubernetes_version}"\n' if self.kubernetes_version else "")
            + "node_prep_install_packages: false\n"
            "node_prep_load_kernel_modules: false\n"
            + (realnode.INVENTORY_SETTINGS.format(kube_vip_version=self.kube_vip_version) if self.runtime == "real" else "")
        )

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
            realnode.write_first_boot_files(etc, realnode.cgroup_root(plan.netns))
            realnode.create_cgroups(realnode.cgroup_root(plan.netns))
            (node_dir / "containerd").mkdir(exist_ok=True)
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
                    # do not show the host's, its /etc, /var/lib and /var/log start as the host's.
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
        bridge) with only the node's address and a default route via the controller."""
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
        # leads nowhere beyond the controller.
        _run([*ns, "route", "add", "default", "via", self.controller_address])

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

    # ---- nodes: exec, power, network -------------------------------------------------------------

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

    # ---- down and status -------------------------------------------------------------------------

    def down(self) -> None:
        """Remove every namespace, link, route, mount, cgroup and process of this lab, and its generated files."""
        self._stop_service("pods-agent")
        self._close_ssh_masters()
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(self._node_down, self.plan.nodes))
        self._dns_down()
        plan = self.plan
        if Path("/sys/class/net", plan.bridge).exists():
            _run(["ip", "link", "del", plan.bridge])
        _run(["ip", "route", "del", "unreachable", str(plan.subnet), "metric", str(GUARD_ROUTE_METRIC)], check=False)
        for generated in ("nodes", "cp", "inventory", "wrappers", "empty", "run", "pods-agent"):
            shutil.rmtree(self.state_dir / generated, ignore_errors=True)
        for generated in ("known_hosts", "ssh_config", "dns.json", "admin.conf", "lab.json"):
            (self.state_dir / generated).unlink(missing_ok=True)
        shutil.rmtree(self.state_dir / "keys", ignore_errors=True)

    def _node_down(self, plan: NodePlan) -> None:
        self._kill_node(plan)
        self._network_namespace_down(plan)
        left = realnode.remove_cgroups(realnode.cgroup_root(plan.netns))
        if left:
            raise LabError(f"cgroups of node {plan.node.name} could not be removed: {', '.join(left)}")

    def _close_ssh_masters(self) -> None:
        cp = self.state_dir / "cp"
        if not cp.is_dir():
            return
        for sock in cp.iterdir():
            if sock.is_socket():
                _run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "lab-node"], check=False, timeout=10)

    def status(self) -> list[dict]:
        rows = []
        for plan in self.plan.nodes:
            running = self.is_running(plan.node)
            isolated = (self._node_dir(plan.node) / "isolated").exists()
            rows.append(
                {
                    "name": plan.node.name,
                    "address": plan.node.address,
                    "role": plan.node.role,
                    "state": ("running" if running else "stopped") + (", isolated" if isolated else ""),
                    "pid": self._init_pid(plan.node),
                }
            )
        return rows


__all__ = ["Lab", "LabError", "Node", "PlanError", "preflight"]
