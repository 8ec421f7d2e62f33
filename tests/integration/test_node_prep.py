# -*- coding: utf-8 -*-
"""The node_prep role on two lab nodes: refusals change nothing, a run writes every per-node file,
a second run and a check-mode run change nothing.

The lab's inventory switches package installation and module loading off (the lab cannot do them);
the repository files are still exercised, against a Kubernetes repository mirror this test serves
from a lab node. Cost: one lab of 2 nodes and 5 ansible-playbook runs.
"""

import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from lab.tests.conftest import lab_factory  # noqa: E402,F401  (the fixture)

pytestmark = pytest.mark.lab

KUBERNETES_VERSION = "1.32.4"
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"  # kubeadm 1.32's PauseVersion
FAKE_KEY = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nbm90IGEgcmVhbCBrZXk=\n-----END PGP PUBLIC KEY BLOCK-----\n"
SWAP_LINE = "/swapfile none swap sw 0 0"
MIRROR = "http://mirror.example:5000"
MIRROR_PORT = 8080
RECAP = re.compile(r"^(\S+)\s*:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)

# Every file the role writes on a lab node (packages, modules loading and services are off there).
WRITTEN = [
    "/etc/modules-load.d/kubernetes.conf",
    "/etc/sysctl.d/kubernetes.conf",
    "/etc/containerd/config.toml",
    "/etc/containerd/certs.d/registry.k8s.io/hosts.toml",
    "/etc/crictl.yaml",
    "/etc/apt/keyrings/kubernetes.asc",
    "/etc/apt/sources.list.d/kubernetes.list",
]
PLAYBOOK = """---
- name: Prepare the nodes for kubeadm
  hosts: all
  gather_facts: false
  roles:
    - vipadm.kubeadm.node_prep
"""


@pytest.fixture
def lab(lab_factory):  # noqa: F811
    return lab_factory(control_planes=2, workers=0, kubernetes_version=KUBERNETES_VERSION)


@pytest.fixture
def repository_mirror(lab):
    """A Kubernetes repository mirror (only its Release.key) served by the last lab node.

    The lab lets nodes answer the controller but not connect to it, so the mirror runs in a node;
    the lab stops it with the node.
    """
    node = lab.nodes[-1]
    lab.exec(node.name, ["sh", "-c", "mkdir -p /root/mirror/v1.32/deb && cat > /root/mirror/v1.32/deb/Release.key"],
             input=FAKE_KEY)  # fmt: skip
    lab.exec(node.name, ["sh", "-c", "cd /root/mirror && nohup python3 -m http.server --bind %s %d "
                                     ">/dev/null 2>&1 &" % (node.address, MIRROR_PORT)])  # fmt: skip
    probe = "import socket; socket.create_connection((%r, %d), timeout=0.5).close()" % (node.address, MIRROR_PORT)
    deadline = time.monotonic() + 10
    while lab.exec(node.name, ["python3", "-c", probe], check=False).returncode != 0:
        assert time.monotonic() < deadline, "the mirror in %s did not start listening" % node.name
        time.sleep(0.2)
    return "http://%s:%d/v1.32/deb/" % (node.address, MIRROR_PORT)


def run_playbook(lab, tmp_path, *options, **variables):
    playbook = tmp_path / "node_prep.yml"
    playbook.write_text(PLAYBOOK)
    extra = tmp_path / "extra.yml"
    extra.write_text(yaml.safe_dump(variables))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    process = subprocess.run(
        [str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", str(lab.inventory_path), str(playbook),
         "-e", "@%s" % extra, *options],
        cwd=str(REPO), env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    recap = {m.group(1): dict(changed=int(m.group(3)), unreachable=int(m.group(4)), failed=int(m.group(5)))
             for m in RECAP.finditer(process.stdout)}  # fmt: skip
    return process, recap


def read(lab, node, path):
    return lab.node_file(node, path).read_text()


def exists(lab, node, path):
    return lab.node_file(node, path).exists()


def mtimes(lab, nodes, paths):
    return {(node, path): lab.node_file(node, path).stat().st_mtime_ns for node in nodes for path in paths}


def host_swap_active():
    with open("/proc/swaps") as swaps:
        return len(swaps.read().splitlines()) > 1


def test_node_prep_on_the_lab(lab, tmp_path, repository_mirror):
    if host_swap_active():
        # /proc/swaps is the machine's own: swapoff -a in a lab node would turn off the host's swap.
        pytest.skip("this machine has active swap; node_prep in the lab would turn it off")
    nodes = [node.name for node in lab.nodes]
    assert len(nodes) == 2
    settings = dict(
        node_prep_configure_repositories=True,
        node_prep_kubernetes_repository_url=repository_mirror,
        node_prep_registry_mirrors={"registry.k8s.io": [MIRROR]},
    )
    fstab_before = read(lab, nodes[0], "/etc/fstab")
    lab.exec(nodes[0], ["sh", "-c", "echo '%s' >> /etc/fstab" % SWAP_LINE])
    original_fstab = read(lab, nodes[0], "/etc/fstab")
    assert original_fstab == fstab_before + SWAP_LINE + "\n"

    # 1. Refusals come before any change, on every node.
    process, recap = run_playbook(lab, tmp_path, vipadm_kubernetes_version="1.28.5", **settings)
    assert process.returncode != 0
    assert "Kubernetes 1.28.5 is not supported by node_prep: choose a version from 1.29 to 1.36" in process.stdout
    assert all(recap[node]["failed"] == 1 and recap[node]["changed"] == 0 for node in nodes)

    lab.exec(nodes[1], ["sh", "-c", "rm /etc/os-release && printf 'PRETTY_NAME=\"Debian GNU/Linux 11 (bullseye)\"\\n"
                                    "ID=debian\\nVERSION_ID=\"11\"\\n' > /etc/os-release"])  # fmt: skip
    process, recap = run_playbook(lab, tmp_path, **settings)
    assert process.returncode != 0
    assert "node_prep does not support Debian GNU/Linux 11 (bullseye)" in process.stdout
    assert "node_prep changed nothing on this node because it refused %s" % nodes[1] in process.stdout
    assert recap[nodes[0]] == dict(changed=0, unreachable=0, failed=1)
    for node in nodes:
        assert [path for path in WRITTEN if exists(lab, node, path)] == [], node
    assert read(lab, nodes[0], "/etc/fstab") == original_fstab
    lab.exec(nodes[1], ["sh", "-c", "rm /etc/os-release && ln -s ../usr/lib/os-release /etc/os-release"])

    # 2. The run writes every per-node file.
    process, recap = run_playbook(lab, tmp_path, **settings)
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-2000:]
    assert all(recap[node]["changed"] > 0 and recap[node]["failed"] == 0 for node in nodes), recap

    fstab = read(lab, nodes[0], "/etc/fstab")
    assert fstab == original_fstab.replace(SWAP_LINE, "# " + SWAP_LINE)  # only the swap entry changed
    for node in nodes:
        modules = read(lab, node, "/etc/modules-load.d/kubernetes.conf")
        assert [line for line in modules.splitlines() if not line.startswith("#")] == ["overlay", "br_netfilter"]
        sysctl = read(lab, node, "/etc/sysctl.d/kubernetes.conf")
        assert "net.ipv4.ip_forward = 1" in sysctl.splitlines()
        assert "net.bridge.bridge-nf-call-iptables = 1" in sysctl.splitlines()
        # The node's own network namespace forwards now; the machine's setting is not the role's business.
        assert lab.exec(node, ["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.strip() == "1"

        containerd = tomllib.loads(read(lab, node, "/etc/containerd/config.toml"))
        cri = containerd["plugins"]["io.containerd.grpc.v1.cri"]
        assert cri["sandbox_image"] == PAUSE_IMAGE
        assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is True
        hosts = tomllib.loads(read(lab, node, "/etc/containerd/certs.d/registry.k8s.io/hosts.toml"))
        assert hosts["server"] == "https://registry.k8s.io" and list(hosts["host"]) == [MIRROR]
        crictl = yaml.safe_load(read(lab, node, "/etc/crictl.yaml"))
        assert crictl["runtime-endpoint"] == "unix:///run/containerd/containerd.sock"

        assert read(lab, node, "/etc/apt/keyrings/kubernetes.asc") == FAKE_KEY
        source = read(lab, node, "/etc/apt/sources.list.d/kubernetes.list").splitlines()[-1]
        assert source == "deb [signed-by=/etc/apt/keyrings/kubernetes.asc] %s /" % repository_mirror
    # Node-private: the second node's fstab never had the entry.
    assert SWAP_LINE not in read(lab, nodes[1], "/etc/fstab")

    # 3. A second run changes nothing.
    before = mtimes(lab, nodes, WRITTEN + ["/etc/fstab"])
    process, recap = run_playbook(lab, tmp_path, **settings)
    assert process.returncode == 0, process.stdout[-3000:]
    assert all(recap[node] == dict(changed=0, unreachable=0, failed=0) for node in nodes), recap

    # 4. Check mode predicts no change and touches nothing.
    process, recap = run_playbook(lab, tmp_path, "--check", "--diff", **settings)
    assert process.returncode == 0, process.stdout[-3000:]
    assert all(recap[node] == dict(changed=0, unreachable=0, failed=0) for node in nodes), recap
    assert mtimes(lab, nodes, WRITTEN + ["/etc/fstab"]) == before

    # 5. Dropping the mirror removes its configuration (and nothing else).
    settings["node_prep_registry_mirrors"] = {}
    process, recap = run_playbook(lab, tmp_path, **settings)
    assert process.returncode == 0, process.stdout[-3000:]
    for node in nodes:
        assert not exists(lab, node, "/etc/containerd/certs.d/registry.k8s.io")
        assert exists(lab, node, "/etc/containerd/certs.d")
        assert recap[node]["changed"] == 1
