"""The lab's nodes: isolation, SSH/Ansible access, network safety, power, teardown."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from lab import Lab, LabError
from lab.slices import claim_slice

REPO_ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = REPO_ROOT / ".venv" / "bin" / "ansible"

pytestmark = pytest.mark.lab


def ssh(lab: Lab, node: str, command: str, timeout: float = 20, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ssh", "-F", str(lab.ssh_config_path), "-o", "BatchMode=yes", *options, node, command],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_nodes_have_private_hostname_files_and_processes(lab_factory):
    lab = lab_factory(runtime="bare", control_planes=2, workers=1)
    assert [(n.name, n.role) for n in lab.nodes] == [("cp1", "control_plane"), ("cp2", "control_plane"),
                                                      ("worker1", "worker")]  # fmt: skip
    for node in lab.nodes:
        assert lab.exec(node, ["hostname"]).stdout.strip() == node.name
        assert lab.exec(node, ["cat", "/etc/hostname"]).stdout.strip() == node.name
    # a file written on cp1 exists only on cp1: not on cp2, not on the host
    private = f"/etc/lab-test-{lab.name}/admin.conf"
    lab.exec("cp1", ["sh", "-c", f"mkdir -p {Path(private).parent} && echo secret > {private}"])
    assert lab.node_file("cp1", private).read_text() == "secret\n"
    assert lab.exec("cp2", ["test", "-e", private], check=False).returncode == 1
    assert not Path(private).parent.exists()
    # a fresh node has no Kubernetes or etcd state, even where the host has some (an etcd package
    # makes /var/lib/etcd): kubeadm's DirAvailable--var-lib-etcd must not see the host's
    assert lab.exec("cp2", ["ls", "-A", "/etc/kubernetes"]).stdout == ""
    for state in ("/var/lib/etcd", "/var/lib/kubelet"):
        assert lab.exec("cp2", ["test", "-e", state], check=False).returncode == 1, state
    # /root, /var/lib are private too
    lab.exec("cp1", ["sh", "-c", "echo x > /root/mark && mkdir -p /var/lib/etcd && touch /var/lib/etcd/mark"])
    assert lab.exec("cp2", ["ls", "/root/mark", "/var/lib/etcd/mark"], check=False).returncode != 0
    assert not Path("/var/lib/etcd/mark").exists()
    # each node sees only its own processes; PID 1 is the node's init
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        ps_cp1 = lab.exec("cp1", ["ps", "-e", "-o", "pid=,comm="]).stdout
        assert f" {sleeper.pid} " not in f" {ps_cp1} "
        assert "sleep" not in ps_cp1
        assert lab.exec("cp1", ["cat", "/proc/1/comm"]).stdout.strip() == "systemd"
    finally:
        sleeper.kill()
        sleeper.wait()
    # each node sees only its own interfaces, with its address and a default route via the controller
    assert lab.exec("cp2", ["ls", "/sys/class/net"]).stdout.split() == ["eth0", "lo"]
    route = lab.exec("cp2", ["ip", "-4", "route", "show", "default"]).stdout
    assert f"via {lab.controller_address} dev eth0" in route
    # every node knows every node by name
    hosts = lab.exec("worker1", ["cat", "/etc/hosts"]).stdout
    for node in lab.nodes:
        assert f"{node.address}\t{node.name}" in hosts
    # names resolve through the lab's DNS, nothing else does
    assert lab.exec("cp1", ["getent", "hosts", "controller"]).stdout.split() == [lab.controller_address, "controller"]
    assert lab.exec("cp1", ["getent", "hosts", "example.com"], check=False).returncode == 2
    # a bare node has nothing of Kubernetes; the systemctl stand-in exists only inside nodes
    assert lab.exec("cp1", ["ls", "-A", "/usr/local/bin"]).stdout == ""
    assert "lab" in lab.exec("cp1", ["head", "-c", "300", "/usr/bin/systemctl"]).stdout
    with open("/usr/bin/systemctl", "rb") as host_systemctl:
        assert host_systemctl.read(4) == b"\x7fELF"


def test_ssh_with_host_keys_and_ansible_ping(lab_factory):
    lab = lab_factory(runtime="bare", control_planes=2, workers=1)
    for node in lab.nodes:
        result = ssh(lab, node.name, "hostname; cat /proc/1/comm")
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [node.name, "systemd"]
    # host keys are checked: a wrong known_hosts entry makes ssh refuse
    known_hosts = lab.state_dir / "known_hosts"
    good = known_hosts.read_text()
    known_hosts.write_text(good.replace(good.split()[2], good.split("\n")[1].split()[2], 1))
    refused = ssh(lab, "cp1", "true", 20, "-o", "ControlPath=none")
    known_hosts.write_text(good)
    assert refused.returncode == 255 and "HOST IDENTIFICATION HAS CHANGED" in refused.stderr
    # Ansible needs nothing but the generated inventory
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    result = subprocess.run(
        [str(ANSIBLE), "-i", str(lab.inventory_path), "all", "-m", "ansible.builtin.ping"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        env={**env, "ANSIBLE_HOME": str(lab.state_dir / "ansible-home")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count('"ping": "pong"') == 3
    # control_plane first, then workers
    hosts = (lab.inventory_path / "hosts.yml").read_text()
    assert hosts.index("control_plane:") < hosts.index("cp1:") < hosts.index("workers:") < hosts.index("worker1:")
    group_vars = (lab.inventory_path / "group_vars" / "all.yml").read_text()
    assert f"kube_vip_address: {lab.vip}" in group_vars


def _listen(address: str) -> tuple[socket.socket, int]:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((address, 0))
    server.listen(8)
    return server, server.getsockname()[1]


CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=0.5).close()
    print("connected")
except OSError as exc:
    print(type(exc).__name__)
"""


def test_nodes_cannot_open_connections_to_the_controller_namespace(lab_factory):
    lab = lab_factory(runtime="bare", control_planes=2)
    server, port = _listen("0.0.0.0")
    server.setblocking(False)
    try:
        host_addresses = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
        for target in [lab.controller_address, *host_addresses]:
            result = lab.exec("cp1", ["python3", "-c", CONNECT, target, str(port)])
            assert result.stdout.strip() != "connected", target
            if ":" not in target:  # IPv4 reaches the controller's namespace, where the guard drops the SYN
                assert result.stdout.strip() in ("TimeoutError", "timeout"), (target, result.stdout)
        with pytest.raises(BlockingIOError):  # nothing ever reached the listener
            server.accept()
        # UDP does not get through either
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("0.0.0.0", 0))
        udp.settimeout(0.5)
        lab.exec("cp1", ["python3", "-c", f"import socket; socket.socket(2, 2).sendto(b'x', ('{lab.controller_address}', "
                                        f"{udp.getsockname()[1]}))"])  # fmt: skip
        with pytest.raises(TimeoutError):
            udp.recvfrom(16)
        udp.close()
    finally:
        server.close()
    # between nodes, and from the controller to nodes, connections work
    assert lab.exec("cp1", ["python3", "-c", CONNECT, lab.nodes[1].address, "22"]).stdout.strip() == "connected"
    assert ssh(lab, "cp2", "true").returncode == 0
    # nothing leaves the lab: no forwarding in the root namespace, and a guard route for the subnet
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == "0"
    routes = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True).stdout
    assert f"unreachable {lab.plan.subnet} metric 4242" in routes
    result = lab.exec("cp1", ["python3", "-c", CONNECT, "203.0.113.9", "443"])
    assert result.stdout.strip() in ("TimeoutError", "timeout", "OSError", "ConnectionRefusedError")


LISTEN6_ONCE = """
import socket, sys
server = socket.socket(socket.AF_INET6)
server.bind((sys.argv[1], 0))
server.listen(1)
print(server.getsockname()[1], flush=True)
server.settimeout(10)
connection, _peer = server.accept()
connection.sendall(b"node")
"""


def test_ipv6_beside_ipv4(lab_factory):
    lab = lab_factory(runtime="bare", control_planes=2, ipv6=True)
    cp1, cp2 = lab.nodes
    assert cp1.address6.startswith("2001:db8:") and lab.vip6.startswith("2001:db8:")
    addresses = lab.exec("cp1", ["ip", "-o", "addr", "show", "dev", "eth0"]).stdout
    assert f"inet {cp1.address}/" in addresses and f"inet6 {cp1.address6}/64" in addresses, addresses
    own = next(line for line in addresses.splitlines() if f"inet6 {cp1.address6}/64" in line)
    assert "tentative" not in own, own  # no DAD delay for the lab's own addresses (the link-local keeps its DAD)
    routes = subprocess.run(["ip", "-6", "route", "show", "table", "all"], capture_output=True, text=True).stdout
    assert f"unreachable {lab.plan.subnet6} dev lo metric 4242" in routes  # ip prints lo for IPv6
    # the controller opens a connection to a node over IPv6 (NDP through the bridge and its guard)
    listener = subprocess.Popen(lab._exec_argv("cp1", ["python3", "-c", LISTEN6_ONCE, cp1.address6]),
                                stdout=subprocess.PIPE, text=True)
    try:
        port = int(listener.stdout.readline())
        with socket.create_connection((cp1.address6, port), timeout=5) as connection:
            assert connection.recv(4) == b"node"
    finally:
        listener.wait(timeout=15)
    # between nodes too; the VIP's address is free
    assert lab.exec("cp2", ["python3", "-c", CONNECT, cp1.address6, "22"]).stdout.strip() == "ConnectionRefusedError"
    assert lab.exec("cp2", ["python3", "-c", CONNECT, lab.vip6, "6443"]).stdout.strip() != "connected"
    # a node cannot open a connection to the controller's namespace over IPv6 either: the guard drops the SYN
    server = socket.socket(socket.AF_INET6)
    server.bind(("::", 0))
    server.listen(1)
    server.setblocking(False)
    try:
        result = lab.exec("cp1", ["python3", "-c", CONNECT, lab.plan.controller_address6, str(server.getsockname()[1])])
        assert result.stdout.strip() in ("TimeoutError", "timeout"), result.stdout
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()
    assert [row.get("address6") for row in lab.status()] == [cp1.address6, cp2.address6]


def test_overlapping_subnet_is_refused_and_nothing_changes(lab_factory, tmp_path):
    lab = lab_factory(runtime="bare", control_planes=1)
    mine = (lab.name, str(lab.plan.subnet), "vtover", "192.0.2.")
    before = _snapshot(mine)
    for subnet, clash in ((str(lab.plan.subnet), str(lab.plan.subnet)), ("192.0.2.0/24", "dev eth0")):
        other = Lab(name="vtover", state_dir=tmp_path / "other", subnet=subnet, control_planes=1, runtime="bare")
        with pytest.raises(LabError, match="overlaps existing route") as refused:
            other.up()
        assert clash in str(refused.value)
    assert not (tmp_path / "other").exists()
    assert _snapshot(mine) == before


def _snapshot(only: tuple[str, ...]) -> dict:
    """Links, routes, namespaces and mounts of the root namespace that mention one of `only`
    (other labs of parallel test runs come and go meanwhile)."""

    def run(*argv):
        return subprocess.run(argv, capture_output=True, text=True).stdout

    def keep(lines):
        return sorted(line for line in lines if any(word in line for word in only))

    return {
        "links": keep(line.split()[1] for line in run("ip", "-o", "link").splitlines()),
        "routes": keep(run("ip", "-4", "route", "show", "table", "all").splitlines()),
        "netns": keep(run("ip", "netns", "list").split()),
        "mounts": keep(Path("/proc/self/mountinfo").read_text().splitlines()),
    }


def test_stop_start_isolate_rejoin(lab_factory):
    lab = lab_factory(runtime="bare", control_planes=2)
    lab.exec("cp1", ["sh", "-c", "echo kept > /var/lib/disk-mark; echo lost > /run/ram-mark"])
    lab.exec("cp1", ["sh", "-c", "setsid sleep 300 >/dev/null 2>&1 &"])
    # `setsid` execs `sleep` a moment after the shell returns
    deadline = time.monotonic() + 5
    while "sleep" not in lab.exec("cp1", ["ps", "-e", "-o", "comm="]).stdout:
        assert time.monotonic() < deadline, "sleep did not start in cp1"
        time.sleep(0.02)
    # Run-time network state, as a kube-vip killed with its node leaves it: a VIP, a link, a route.
    boot_network = lab.exec("cp1", ["sh", "-c", "ip -o -4 addr; ip route"]).stdout
    lab.exec("cp1", ["sh", "-ec", f"ip addr add {lab.vip}/32 dev eth0; ip link add lab-extra type veth peer name "
                     f"lab-extra-peer; ip route add 203.0.113.0/24 via {lab.controller_address}; "
                     "sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.eth0.rp_filter=2"])
    # persisted for the next boot (as node_prep does): applied at boot like systemd-sysctl
    lab.exec("cp1", ["sh", "-c", "echo 'net.ipv4.conf.all.rp_filter = 1' > /etc/sysctl.d/50-lab-test.conf"])
    init_pid = lab.status()[0]["pid"]
    init_started = _start_time(init_pid)
    lab.stop("cp1")
    assert _start_time(init_pid) != init_started and not lab.is_running("cp1")
    assert [r["state"] for r in lab.status()] == ["stopped", "running"]
    assert "state DOWN" in subprocess.run(["ip", "link", "show", lab.plan.nodes[0].veth], capture_output=True,
                                          text=True).stdout  # fmt: skip
    assert ssh(lab, "cp1", "true", 10, "-o", "ControlPath=none", "-o", "ConnectTimeout=1").returncode == 255
    with pytest.raises(LabError, match="not running"):
        lab.exec("cp1", ["true"])
    lab.start("cp1")
    assert lab.exec("cp1", ["cat", "/var/lib/disk-mark"]).stdout == "kept\n"
    assert lab.exec("cp1", ["test", "-e", "/run/ram-mark"], check=False).returncode == 1
    assert "sleep" not in lab.exec("cp1", ["ps", "-e", "-o", "comm="]).stdout
    # A reboot clears what the node set up at run time: it comes up with only its own address.
    assert lab.exec("cp1", ["sh", "-c", "ip -o -4 addr; ip route"]).stdout == boot_network
    assert lab.nodes[0].address in boot_network and lab.vip not in boot_network
    assert "lab-extra" not in lab.exec("cp1", ["ip", "-o", "link"]).stdout
    sysctls = lab.exec("cp1", ["sysctl", "-n", "net.ipv4.ip_forward", "net.ipv4.conf.eth0.rp_filter",
                               "net.ipv4.conf.all.rp_filter"]).stdout.split()
    assert sysctls == ["0", "0", "1"]  # run-time values gone, the persisted one applied
    assert ssh(lab, "cp1", "hostname", 10, "-o", "ControlPath=none").stdout.strip() == "cp1"
    # isolate: the node runs on but nobody reaches it, and it reaches nobody
    lab.isolate("cp2")
    assert lab.status()[1]["state"] == "running, isolated"
    assert lab.exec("cp2", ["hostname"]).stdout.strip() == "cp2"
    probe = ["python3", "-c", CONNECT, lab.nodes[1].address, "22"]
    assert lab.exec("cp1", probe).stdout.strip() != "connected"
    lab.rejoin("cp2")
    # the first SYN may meet a neighbour entry that failed while cp2 was cut off: allow a retry
    assert any(lab.exec("cp1", probe).stdout.strip() == "connected" for _ in range(6))
    assert ssh(lab, "cp2", "hostname", 10, "-o", "ControlPath=none").stdout.strip() == "cp2"


def _lab_footprint(name: str) -> dict:
    """Everything in the root namespace that carries the lab's name."""
    def run(*argv):
        return subprocess.run(argv, capture_output=True, text=True).stdout

    return {
        "links": [line for line in run("ip", "-o", "link").splitlines() if f" {name}-" in line],
        "netns": [ns for ns in run("ip", "netns", "list").split() if ns.startswith(f"{name}-")],
        "mounts": [m for m in Path("/proc/self/mountinfo").read_text().splitlines() if f"/{name}-" in m],
    }


def _children(pid: int) -> set[int]:
    """All descendants of pid."""
    found, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                kids = {int(k) for k in (task / "children").read_text().split()}
                todo.extend(kids - found)
                found |= kids
    return found


def test_down_leaves_nothing_and_up_down_twice(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("lab tests need root")
    claim, name, subnet, state_dir = claim_slice(2, 1)  # the fixtures' allocator, used directly for two cycles
    try:
        routes_before = [r for r in _routes() if subnet in r]
        children_before = _children(os.getpid())
        for cycle in range(2):
            lab = Lab(name=name, state_dir=state_dir, subnet=subnet, control_planes=2, workers=1, runtime="bare")
            lab.up()
            assert sorted(_lab_footprint(name)["netns"]) == [f"{name}-cp1", f"{name}-cp2", f"{name}-dns",
                                                             f"{name}-worker1"]  # fmt: skip
            pids = [row["pid"] for row in lab.status()]
            started = {pid: _start_time(pid) for pid in pids}
            assert all(pids) and ssh(lab, "worker1", "hostname").stdout.strip() == "worker1"
            lab.down()
            assert _lab_footprint(name) == {"links": [], "netns": [], "mounts": []}, cycle
            assert [r for r in _routes() if subnet in r] == routes_before == []
            assert all(_start_time(pid) != started[pid] for pid in pids)  # gone (or the PID reused)
            assert _children(os.getpid()) == children_before
            assert sorted(p.name for p in state_dir.iterdir()) == []
    finally:
        Lab(name=name, state_dir=state_dir, subnet=subnet, control_planes=2, workers=1, runtime="bare").down()
        shutil.rmtree(state_dir, ignore_errors=True)
        claim.unlink()


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except FileNotFoundError:
        return None


def _routes() -> list[str]:
    return subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True).stdout.splitlines()
