"""The lab: bare-metal nodes from Linux namespaces, reached over real SSH.

`Lab` is the Python API (also used by `python -m lab`): its nodes (lab/nodes), its network
(lab/network) and, in a real lab, the components they run (lab/components). Controller side: Python
standard library only. Every global name it creates is derived from the lab name (see plan.py);
everything else lives in its state directory.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .network.bridge import Network
from .nodes import limits, real as realnode
from .nodes.node import STOP_TIMEOUT, Nodes
from .plan import LabPlan, Node, PlanError, make_plan
from .system import LabError, global_lock as _global_lock, pid_alive as _pid_alive, run as _run, start_time as _start_time

REPO_ROOT = Path(__file__).resolve().parent.parent
# real: nodes with containerd and the Kubernetes programs built by lab/components (images imported);
# bare: nodes with sshd and the systemctl stand-in only, for tests of the lab itself.
RUNTIMES = ("real", "bare")
# What of Kubernetes a real node has before vipadm runs. installed: kubeadm, kubelet, kubectl, the kubelet
# unit and drop-in, the pin's images in containerd (what the Kubernetes packages and a pre-pull leave);
# bare: only what Debian's packages give (containerd, runc, the CNI plugins) and no route out of the
# lab: node_prep installs the rest from the pin's bundle (an air-gapped machine).
NODE_SOFTWARE = ("installed", "bare")


def _pins():
    from .components import load_pins

    return load_pins()


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


class Lab(Nodes, Network):
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
        node_software: str = "installed",
        bundle_dir: Path | str | None = None,
        ipv6: bool = False,
    ):
        """ipv6: every node, the controller and the VIP also get an address of the lab's IPv6 /64 (2001:db8::/32,
        plan.ipv6_subnet); SSH, the inventory and the lab's DNS stay on IPv4."""
        if runtime not in RUNTIMES:
            raise PlanError(f"runtime {runtime!r} is not one of {', '.join(RUNTIMES)}")
        if node_software not in NODE_SOFTWARE:
            raise PlanError(f"node software {node_software!r} is not one of {', '.join(NODE_SOFTWARE)}")
        if runtime == "bare" and node_software == "bare":
            raise PlanError("bare nodes (no Kubernetes installed, a bundle to install it from) need the real runtime: "
                            "the bare runtime's nodes have no containerd either")
        self.plan: LabPlan = make_plan(name, subnet, control_planes, workers, ipv6=ipv6)
        self.state_dir = Path(state_dir if state_dir is not None else REPO_ROOT / ".lab").absolute()
        self.runtime = runtime
        real = runtime == "real"
        self.kubernetes_version = kubernetes_version or (_pins().default_kubernetes if real else "")
        self.kube_vip_version = kube_vip_version or (_pins().default_kube_vip if real else "")
        self.node_software = node_software
        # bare nodes: the pin's bundle (lab/components/bundle.py) that the inventory gives node_prep
        self.bundle_dir = Path(bundle_dir) if bundle_dir else None
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
        runtime = data.get("runtime", "real")
        if runtime not in RUNTIMES:  # a lab of an older checkout (the retired simulator): down as bare nodes
            runtime = "bare"
        return cls(
            name=data["name"],
            state_dir=path.parent,
            subnet=data["subnet"],
            control_planes=data["control_planes"],
            workers=data["workers"],
            kubernetes_version=data["kubernetes_version"],
            runtime=runtime,
            kube_vip_version=data.get("kube_vip_version"),
            node_software=data.get("node_software", "installed") if runtime == "real" else "installed",
            bundle_dir=data.get("bundle_dir"),
            ipv6=data.get("ipv6", False),
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
            "node_software": self.node_software,
            "bundle_dir": str(self.bundle_dir) if self.bundle_dir else None,
            "ipv6": self.plan.subnet6 is not None,
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
    def vip6(self) -> str:
        """A free address of the lab's IPv6 /64 for an IPv6 VIP ("" without IPv6)."""
        return self.plan.vip6

    @property
    def controller_address(self) -> str:
        return self.plan.controller_address

    @property
    def inventory_path(self) -> Path:
        return self.state_dir / "inventory"

    @property
    def ssh_config_path(self) -> Path:
        return self.state_dir / "ssh_config"

    @property
    def kubectl_path(self) -> Path:
        """The pin's kubectl for the controller (a real lab's), whatever its nodes have."""
        return self.state_dir / "tools" / "kubectl"

    def node(self, node: Node | str) -> Node:
        return self.plan.node(str(node)).node

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
        builds (or takes from the cache) its components, puts their images in every node (bare nodes: writes
        the pin's bundle instead) and runs the pod network agent; a bare lab's nodes have sshd and the
        systemctl stand-in only."""
        preflight()
        if self.runtime == "real":
            real_preflight()
            from .components import Builder

            self.components = Builder(log=log or (lambda line: None)).build_pin(self.kubernetes_version, self.kube_vip_version)
            if self.node_software == "bare":
                from .components.bundle import lab_bundle_dir, write_bundle

                self.bundle_dir = write_bundle(self.components, lab_bundle_dir(self.components), log=log).directory
        with _global_lock():
            self._check_free()
            if self.runtime == "real":  # kubelets and containerds of every lab share root's inotify instances
                control_planes = sum(1 for node in self.nodes if node.role == "control_plane")
                limits.ensure_for_nodes(control_planes, len(self.nodes) - control_planes,
                                        log=log or (lambda line: print(line, file=sys.stderr)))
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
                    list(pool.map(self._software_up, self.plan.nodes))
                self._start_service("pods-agent", [sys.executable, "-m", "lab.network.pods", str(self.state_dir)])
        except BaseException:
            self.down()
            raise

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

    def _controller_files_up(self) -> None:
        state = self.state_dir
        for sub in ("keys", "cp", "nodes", "inventory/group_vars", "wrappers", "empty", "tools"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        (state / "cp").chmod(0o700)
        key = state / "keys" / "id_ed25519"
        if not key.exists():
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"lab-{self.name}-controller", "-f", str(key)])
        if self.runtime == "real":
            realnode.link_or_copy(self.components.binary("kubectl"), self.kubectl_path)
        if self.runtime == "real" and self.node_software == "installed":
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
                if role == "control_plane" and self.node_software == "bare":  # no default route to pick it
                    lines.append(f"          control_plane_advertise_address: {node.address}")
        (self.inventory_path / "hosts.yml").write_text("\n".join(lines) + "\n")
        (self.inventory_path / "group_vars" / "all.yml").write_text(
            "---\n"
            f"# Written by `python -m lab up` for lab {self.name}.\n"
            f"kube_vip_address: {self.vip}\n"
            + (f'vipadm_kubernetes_version: "{self.kubernetes_version}"\n' if self.kubernetes_version else "")
            + "node_prep_install_packages: false\n"
            "node_prep_load_kernel_modules: false\n"
            + (realnode.INVENTORY_SETTINGS.format(kube_vip_version=self.kube_vip_version) if self.runtime == "real" else "")
            + (realnode.BARE_INVENTORY_SETTINGS.format(bundle_dir=json.dumps(str(self.bundle_dir)))
               if self.node_software == "bare" else "")  # fmt: skip
        )

    # ---- down and status -------------------------------------------------------------------------

    def down(self) -> None:
        """Remove every namespace, link, route, mount, cgroup and process of this lab, and its generated files."""
        self._stop_service("pods-agent")
        self._close_ssh_masters()
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(self._node_down, self.plan.nodes))
        self._network_down()
        for generated in ("nodes", "cp", "inventory", "wrappers", "empty", "run", "pods-agent", "tools"):
            shutil.rmtree(self.state_dir / generated, ignore_errors=True)
        for generated in ("known_hosts", "ssh_config", "dns.json", "admin.conf", "lab.json"):
            (self.state_dir / generated).unlink(missing_ok=True)
        shutil.rmtree(self.state_dir / "keys", ignore_errors=True)

    def _close_ssh_masters(self) -> None:
        cp = self.state_dir / "cp"
        if not cp.is_dir():
            return
        for sock in cp.iterdir():
            if sock.is_socket():
                _run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "lab-node"], check=False, timeout=10)


__all__ = ["Lab", "LabError", "Node", "PlanError", "preflight"]
