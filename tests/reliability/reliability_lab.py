# -*- coding: utf-8 -*-
"""Equipment of the reliability suite: site.yml runs (with a controller kill switch), node snapshots,
the kubeadm call log of each node, inventories built from the lab's, a TLS client of the API server.

Every lab here runs the real programs (runtime "real"): kubeadm, the kubelet, containerd, etcd, the
control plane and kube-vip. Nothing imitates them; faults are real ones (a process killed, a node
powered off, a link cut, a Secret deleted).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = str(REPO / ".venv" / "bin" / "ansible-playbook")
SITE = str(REPO / "playbooks" / "site.yml")
NODE_PREP = str(REPO / "playbooks" / "node_prep.yml")
RECAP = re.compile(r"^(\S+)\s*:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
# Where kubeadm leaves its traces on a node; a refused run must not touch any of them.
KUBEADM_TRACES = ("/etc/kubernetes", "/var/lib/kubelet", "/var/lib/etcd", "/etc/systemd/system")
# Every kubeadm call on a lab node, with its arguments, survives power cycles (/var/log is on the node's disk).
KUBEADM_CALLS = "/var/log/reliability-kubeadm-calls.log"
# The join module removes its config (token, certificate key) after kubeadm join: the wrapper keeps a copy.
KUBEADM_JOIN_CONFIGS = "/var/log/reliability-kubeadm-join-configs.log"
JOIN_CONFIG_MARK = "# reliability: kubeadm join config\n"
KUBEADM = "/usr/local/bin/kubeadm"
# A wrapper the suite puts in front of the node's real kubeadm (node-private: the node's /usr/local/bin is
# an overlay whose upper layer is the node's disk): every call logged with its arguments, then exec.
KUBEADM_WRAPPER = """#!/bin/sh
# reliability suite: log this kubeadm call (and a join's config), then run the real kubeadm
echo "$(date +%s.%N) $*" >> {calls}
if [ "$1" = join ] && [ "$2" = --config ]; then echo '{mark}' >> {configs}; cat "$3" >> {configs}; fi
exec {real} "$@"
"""
KUBECTL = ("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf")


class Run:
    """One finished ansible-playbook run: rc, the whole output, the recap per host, the wall time."""

    def __init__(self, argv, rc, output, elapsed, killed_at=None, times=()):
        self.argv, self.rc, self.output, self.elapsed, self.killed_at = argv, rc, output, elapsed, killed_at
        self.times = list(times)  # seconds since the start at which each output line arrived
        self.recap = {m.group(1): dict(ok=int(m.group(2)), changed=int(m.group(3)), unreachable=int(m.group(4)),
                                       failed=int(m.group(5))) for m in RECAP.finditer(output)}  # fmt: skip

    def at(self, pattern):
        """Seconds since the start at which the first output line matching pattern arrived (None: never)."""
        return next((t for t, line in zip(self.times, self.output.splitlines()) if re.search(pattern, line)), None)

    def plays(self):
        return re.findall(r"^PLAY \[(.*?)\] \*", self.output, re.M)

    def errors(self):
        return [line for line in self.output.splitlines() if line.startswith(("[ERROR]", "fatal:")) or "UNREACHABLE" in line]

    def __repr__(self):
        return "Run(rc=%s, %.1f s, killed_at=%r)\nerrors:\n%s\nend of the output:\n%s" % (
            self.rc, self.elapsed, self.killed_at, "\n".join(e[:600] for e in self.errors()), self.output[-4000:])


def ansible_env():
    return dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")


def run_playbook(lab, playbook=SITE, *options, inventory=None, extra=None, timeout=600,
                 kill_when=None):  # fmt: skip
    """Run a playbook against the lab. extra: variables passed as one JSON -e. kill_when(line, lines) -> a
    label, checked on every output line (and about every 0.2 s with line=None): when it returns one, the
    controller is killed at once (SIGKILL to ansible-playbook and its workers), as a crash or power loss of
    the controller machine would do."""
    argv = [ANSIBLE_PLAYBOOK, "-i", str(inventory or lab.inventory_path), str(playbook)]
    if extra:
        argv += ["-e", json.dumps(extra)]
    argv += list(options)
    started = time.monotonic()
    process = subprocess.Popen(argv, cwd=str(REPO), env=ansible_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    received = queue.Queue()
    reader = threading.Thread(target=lambda: [received.put(line) for line in process.stdout] + [received.put(None)],
                              daemon=True)  # fmt: skip
    reader.start()
    lines, times, killed_at, finished = [], [], None, False
    while not finished:
        try:
            line = received.get(timeout=0.2)
        except queue.Empty:
            line = ""
        if line is None:
            finished = True
            line = ""
        elif line:
            line = line.rstrip("\n")
            lines.append(line)
            times.append(time.monotonic() - started)
        if kill_when and killed_at is None:
            killed_at = kill_when(line or None, lines)
            if killed_at:
                os.killpg(process.pid, signal.SIGKILL)
        if time.monotonic() - started > timeout:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise AssertionError("ansible-playbook ran more than %d s:\n%s" % (timeout, "\n".join(lines[-80:])))
    process.wait()
    if killed_at:
        # Workers of a killed controller may linger a moment; none may act after the "crash".
        while True:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                break
            time.sleep(0.05)
    run = Run(argv, process.returncode, "\n".join(lines), time.monotonic() - started, killed_at, times)
    if os.environ.get("RELIABILITY_LOG_DIR"):  # every run's output with arrival times, for a look afterwards
        log = Path(os.environ["RELIABILITY_LOG_DIR"], "%s-%s.log" % (time.strftime("%H%M%S"), Path(str(playbook)).stem))
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("".join("%7.1f %s\n" % pair for pair in zip(times, lines)))
    return run


def write_inventory(path, lab, groups, host_addresses=None):
    """A YAML inventory for the lab: groups = {group: [node, ...]}; host_addresses = {inventory name:
    lab node whose address it uses} for hosts that are not lab node names."""
    source = yaml.safe_load(Path(lab.inventory_path, "hosts.yml").read_text())
    addresses = {node.name: node.address for node in lab.nodes}
    children = {}
    for group, hosts in groups.items():
        children[group] = {"hosts": {h: {"ansible_host": addresses[(host_addresses or {}).get(h, h)]} for h in hosts}
                           if hosts else None}  # fmt: skip
    inventory = {"all": {"vars": source["all"]["vars"], "children": children}}
    path.mkdir(parents=True, exist_ok=True)
    (path / "hosts.yml").write_text(yaml.safe_dump(inventory, sort_keys=False))
    shutil.copytree(Path(lab.inventory_path, "group_vars"), path / "group_vars", dirs_exist_ok=True)
    return path


def prepare_nodes(lab):
    """playbooks/node_prep.yml on every node, as a user runs it before site.yml (sysctl, containerd's
    configuration for the lab's cgroupfs driver and pause image; the lab skips packages and modules)."""
    run = run_playbook(lab, NODE_PREP, timeout=300)
    assert run.rc == 0, run
    return run


def snapshot(lab, node):
    """Everything on a node that a bootstrap changes: kubeadm's and the kubelet's files (path, size,
    mode, content digest), the unit enablement links, every systemctl call, the node's addresses."""
    script = (
        "for d in %s; do [ -e \"$d\" ] && find \"$d\" -printf '%%p %%s %%m %%y\\n' "
        "-type f -exec sha256sum {} + ; done | sort; "
        "echo systemctl:; cat /run/lab-node/systemctl.log 2>/dev/null | grep -v ' is-\\| show\\| --version\\| status'; "
        "echo addresses:; ip -o -4 addr show | awk '{print $2, $4}'"
    ) % " ".join(KUBEADM_TRACES)
    out = lab.exec(node, ["sh", "-c", script], check=True).stdout
    return out


def snapshots(lab):
    return {node.name: snapshot(lab, node.name) for node in lab.nodes if lab.is_running(node.name)}


def record_kubeadm_calls(lab):
    """Make each node log every kubeadm call with its arguments: a wrapper at /usr/local/bin/kubeadm
    (the node's own disk) that logs, then execs the real binary. The real one is the lower layer of the
    node's /usr/local/bin overlay, <state>/wrappers/kubeadm, which a node sees at the same path (/tmp is
    shared with the machine); a node that does not gets its own copy."""
    lower = lab.state_dir / "wrappers" / "kubeadm"
    for node in lab.nodes:
        if lab.exec(node.name, ["head", "-c", "2", KUBEADM], check=True).stdout == "#!":
            continue  # our wrapper already (the real kubeadm is an ELF binary)
        real = str(lower)
        if lab.exec(node.name, ["test", "-x", real], check=False).returncode != 0:
            real = KUBEADM + ".real"
            lab.exec(node.name, ["cp", "-p", KUBEADM, real], check=True, timeout=120)
        wrapper = KUBEADM_WRAPPER.format(calls=KUBEADM_CALLS, configs=KUBEADM_JOIN_CONFIGS,
                                         mark=JOIN_CONFIG_MARK.rstrip("\n"), real=shlex.quote(real))  # fmt: skip
        lab.exec(node.name, ["sh", "-c", "cat > %s.logged && chmod 755 %s.logged && mv %s.logged %s"
                             % ((KUBEADM,) * 4)], input=wrapper, check=True)  # fmt: skip
        version = lab.exec(node.name, ["kubeadm", "version", "-o", "short"], check=True).stdout.strip()
        assert version == "v" + lab.kubernetes_version, (node.name, version)
        lab.exec(node.name, ["sh", "-c", ": > " + KUBEADM_CALLS], check=True)  # that check is not a call of the product


def kubeadm_calls(lab, node, verb=None):
    """The kubeadm calls logged on a node (see record_kubeadm_calls), optionally of one subcommand. Without a
    verb, `kubeadm version` is left out: it changes nothing (preflight_facts reads the version on every run)."""
    path = lab.node_file(node, KUBEADM_CALLS)
    calls = path.read_text().splitlines() if path.exists() else []
    args = [line.split(" ", 1)[1] if " " in line else "" for line in calls]
    if verb is None:
        return [a for a in args if a.split(" ")[0] != "version"]
    return [a for a in args if a.split(" ")[0] == verb]


def join_configs(lab, node):
    """The kubeadm join configs a node's joins used, oldest first (see record_kubeadm_calls)."""
    path = lab.node_file(node, KUBEADM_JOIN_CONFIGS)
    return path.read_text().split(JOIN_CONFIG_MARK)[1:] if path.exists() else []


def kubeadm_inits(lab, node):
    """The full `kubeadm init` runs logged on a node (not `init phase ...`, which join_credentials uses)."""
    return [c for c in kubeadm_calls(lab, node, "init") if not c.startswith("init phase")]


def file_digest(lab, node, path):
    target = lab.node_file(node, path)
    return hashlib.sha256(target.read_bytes()).hexdigest() if target.exists() else None


ETCDCTL = ("ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt "
           "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key")


def kubectl(lab, node, *args, check=True, timeout=60, input=None):
    """kubectl with admin.conf on a control plane (the API server of that node, through the VIP)."""
    result = lab.exec(node, [*KUBECTL, *args], check=False, timeout=timeout, input=input)
    if check:
        assert result.returncode == 0, "kubectl %s on %s: %s" % (" ".join(args), node, result.stdout + result.stderr)
    return result


class ApiClient:
    """A TLS client of the API server of our own: the cluster CA and the admin client certificate that
    admin.conf embeds (read from the node's disk), no kubectl and nothing of the product."""

    def __init__(self, lab, node, tmp_path):
        config = yaml.safe_load(lab.node_file(node, "/etc/kubernetes/admin.conf").read_text())
        cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
        cert, key = tmp_path / "admin.crt", tmp_path / "admin.key"
        cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
        key.write_bytes(base64.b64decode(user["client-key-data"]))
        key.chmod(0o600)
        self.context = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
        self.context.load_cert_chain(str(cert), str(key))

    def get(self, address, path, port=6443, timeout=1.0):
        """(status, parsed JSON body or raw bytes)."""
        with socket.create_connection((address, port), timeout=timeout) as raw:
            with self.context.wrap_socket(raw, server_hostname=address) as tls:
                tls.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
                             % (path, address, port)).encode())  # fmt: skip
                data = b""
                while True:
                    chunk = tls.recv(65536)
                    if not chunk:
                        break
                    data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        if b"transfer-encoding: chunked" in head.lower():
            body = _dechunk(body)
        return int(head.split()[1]), (json.loads(body) if body.startswith(b"{") else body)


def _dechunk(body):
    out = b""
    while body:
        size_text, _, rest = body.partition(b"\r\n")
        size = int(size_text.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return out


def vip_holders(lab):
    return [node.name for node in lab.nodes if lab.is_running(node.name)
            and " %s/" % lab.vip in lab.exec(node.name, ["ip", "-o", "-4", "addr", "show", "dev", "eth0"]).stdout]


def wait_for(predicate, timeout, interval=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except (OSError, ValueError, ssl.SSLError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def assert_healthy_ha(lab, tmp_path, control_planes=("cp1", "cp2", "cp3"), workers=("worker1",), max_inits=1):
    """Every control plane an etcd member, every node registered and the API answering through the VIP
    (checked by a client of our own, not by the playbook), one VIP holder, one kubeadm init in the
    whole history of the lab (see record_kubeadm_calls), or max_inits when an init was cut short."""
    client = ApiClient(lab, control_planes[0], tmp_path)
    wait_for(lambda: client.get(lab.vip, "/readyz")[0] == 200, 60, what="the API through the VIP")
    status, nodes = client.get(lab.vip, "/api/v1/nodes")
    assert status == 200, nodes
    assert sorted(item["metadata"]["name"] for item in nodes["items"]) == sorted(list(control_planes) + list(workers))
    members = json.loads(lab.exec(control_planes[0], ["sh", "-c", ETCDCTL + " member list -w json"], check=True).stdout)
    assert sorted(m.get("name") for m in members["members"]) == sorted(control_planes), members
    assert len(vip_holders(lab)) == 1, vip_holders(lab)
    inits = {node.name: kubeadm_inits(lab, node.name) for node in lab.nodes}
    assert 1 <= sum(len(calls) for calls in inits.values()) <= max_inits, "kubeadm init ran too often: %s" % inits
