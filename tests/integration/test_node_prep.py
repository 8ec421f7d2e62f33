# -*- coding: utf-8 -*-
"""The node_prep role on two nodes of the real lab (containerd from the machine's package, enabled and
running as a fresh install leaves it, with the package's own config.toml): refusals change nothing, a
run writes every per-node file and the real containerd restarts with that configuration, a second run and
a check-mode run change nothing, dropping a registry mirror removes its file and restarts containerd.

The lab's inventory switches package installation and module loading off (the lab cannot do them) and
gives the settings of this machine (cgroupfs driver, restrict_oom_score_adj, Debian's CNI directory);
the repository files are still exercised (Kubernetes' and, from 1.36, Docker's for containerd) against
mirrors of their signing keys this test serves from a lab node.
Cost: one real lab of 2 nodes and 6 ansible-playbook runs: 127 s in all on 2 shared cores (load average
5-10, two other labs up), of which the runs 95 s (refusals 3 s each, first run 29 s, second 21 s, check
20 s, mirror dropped 19 s); 225-240 s while a 3+10 bench lab ran (load average 12-16).
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

FAKE_KEY = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nbm90IGEgcmVhbCBrZXk=\n-----END PGP PUBLIC KEY BLOCK-----\n"
FAKE_DOCKER_KEY = FAKE_KEY.replace("bm90IGEgcmVhbCBrZXk=", "bm90IERvY2tlcidzIGtleQ==")
SWAP_LINE = "/swapfile none swap sw 0 0"
MIRROR = "http://mirror.example:5000"
MIRROR_PORT = 8080
RUN_SECONDS = []  # wall time of each ansible-playbook run, printed at the end
RECAP = re.compile(r"^(\S+)\s*:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)

# Every file the role writes on a lab node (packages and module loading are off there).
WRITTEN = [
    "/etc/modules-load.d/kubernetes.conf",
    "/etc/sysctl.d/kubernetes.conf",
    "/etc/containerd/config.toml",
    "/etc/containerd/certs.d/registry.k8s.io/hosts.toml",
    "/etc/crictl.yaml",
    "/etc/apt/keyrings/kubernetes.asc",
    "/etc/apt/sources.list.d/kubernetes.list",
    # From Kubernetes 1.36 containerd comes from Docker's repository by default (node_prep_containerd_source).
    "/etc/apt/keyrings/docker.asc",
    "/etc/apt/sources.list.d/docker.list",
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
    return lab_factory(control_planes=2, workers=0, runtime="real")


@pytest.fixture
def repository_mirror(lab):
    """Mirrors of the Kubernetes and Docker repositories (only their signing keys) served by the last lab node:
    (Kubernetes repository URL, Docker repository URL).

    The lab lets nodes answer the controller but not connect to it, so the mirror runs in a node;
    the lab stops it with the node.
    """
    node = lab.nodes[-1]
    path = "v%s.%s/deb" % tuple(lab.kubernetes_version.split(".")[:2])
    for directory, name, key in ((path, "Release.key", FAKE_KEY), ("docker/linux/debian", "gpg", FAKE_DOCKER_KEY)):
        script = "mkdir -p /root/mirror/{0} && cat > /root/mirror/{0}/{1}".format(directory, name)
        lab.exec(node.name, ["sh", "-c", script], input=key)
    lab.exec(node.name, ["sh", "-c", "cd /root/mirror && nohup python3 -m http.server --bind %s %d "
                                     ">/dev/null 2>&1 &" % (node.address, MIRROR_PORT)])  # fmt: skip
    probe = "import socket; socket.create_connection((%r, %d), timeout=0.5).close()" % (node.address, MIRROR_PORT)
    deadline = time.monotonic() + 10
    while lab.exec(node.name, ["python3", "-c", probe], check=False).returncode != 0:
        assert time.monotonic() < deadline, "the mirror in %s did not start listening" % node.name
        time.sleep(0.2)
    base = "http://%s:%d" % (node.address, MIRROR_PORT)
    return "%s/%s/" % (base, path), base + "/docker/linux/debian"


def run_playbook(lab, tmp_path, *options, **variables):
    playbook = tmp_path / "node_prep.yml"
    playbook.write_text(PLAYBOOK)
    extra = tmp_path / "extra.yml"
    extra.write_text(yaml.safe_dump(variables))
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    started = time.monotonic()
    process = subprocess.run(
        [str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", str(lab.inventory_path), str(playbook),
         "-e", "@%s" % extra, *options],
        cwd=str(REPO), env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    RUN_SECONDS.append(time.monotonic() - started)
    recap = {m.group(1): dict(changed=int(m.group(3)), unreachable=int(m.group(4)), failed=int(m.group(5)))
             for m in RECAP.finditer(process.stdout)}  # fmt: skip
    return process, recap


def read(lab, node, path):
    return lab.node_file(node, path).read_text()


def exists(lab, node, path):
    return lab.node_file(node, path).exists()


def mtimes(lab, nodes, paths):
    return {(node, path): lab.node_file(node, path).stat().st_mtime_ns for node in nodes for path in paths}


def contents(lab, nodes, paths):
    return {(node, path): read(lab, node, path) if exists(lab, node, path) else None
            for node in nodes for path in paths}  # fmt: skip


def cri_starts(lab, node):
    """The configurations the node's containerd started its CRI plugin with, oldest first: containerd logs
    each one ("Start cri plugin with config {...}"); the lab's systemctl keeps a unit's output in
    /var/log/lab/<unit>.log, as the journal would."""
    log = read(lab, node, "/var/log/lab/containerd.service.log")
    return re.findall(r"Start cri plugin with config (\{.*\})", log)


def inventory_variables(lab):
    return yaml.safe_load(Path(lab.inventory_path, "group_vars", "all.yml").read_text())


def host_swap_active():
    with open("/proc/swaps") as swaps:
        return len(swaps.read().splitlines()) > 1


def test_node_prep_on_the_lab(lab, tmp_path, repository_mirror):
    if host_swap_active():
        # /proc/swaps is the machine's own: swapoff -a in a lab node would turn off the host's swap.
        pytest.skip("this machine has active swap; node_prep in the lab would turn it off")
    started = time.monotonic()
    RUN_SECONDS.clear()
    nodes = [node.name for node in lab.nodes]
    assert len(nodes) == 2
    inventory = inventory_variables(lab)
    systemd_cgroup = inventory.get("vipadm_cgroup_driver", "systemd") == "systemd"
    restrict_oom = bool(inventory.get("node_prep_containerd_restrict_oom_score_adj", False))
    cni_bin_dir = inventory.get("node_prep_cni_bin_dir", "/opt/cni/bin")
    # The pause image the node's real kubeadm asks for (the lab imported it into containerd).
    pause_image = next(ref for ref in lab.components.image_references if ref.startswith("registry.k8s.io/pause:"))
    for node in nodes:  # a fresh node: containerd runs with its package's configuration
        assert lab.exec(node, ["systemctl", "is-active", "containerd"], check=False).stdout.strip() == "active"
        assert len(cri_starts(lab, node)) == 1, node
    before_refusals = contents(lab, nodes, WRITTEN)
    kubernetes_repository, docker_repository = repository_mirror
    settings = dict(
        node_prep_configure_repositories=True,
        node_prep_kubernetes_repository_url=kubernetes_repository,
        node_prep_containerd_repository_url=docker_repository,
        node_prep_registry_mirrors={"registry.k8s.io": [MIRROR]},
    )
    fstab_before = read(lab, nodes[0], "/etc/fstab")
    lab.exec(nodes[0], ["sh", "-c", "echo '%s' >> /etc/fstab" % SWAP_LINE])
    original_fstab = read(lab, nodes[0], "/etc/fstab")
    assert original_fstab == fstab_before + SWAP_LINE + "\n"

    # 1. Refusals come before any change, on every node.
    process, recap = run_playbook(lab, tmp_path, vipadm_kubernetes_version="1.28.5", **settings)
    assert process.returncode != 0
    assert "Kubernetes 1.28.5 is not supported by node_prep: choose a version from 1.29 to 1.37" in process.stdout
    assert all(recap[node]["failed"] == 1 and recap[node]["changed"] == 0 for node in nodes)
    assert contents(lab, nodes, WRITTEN) == before_refusals

    lab.exec(nodes[1], ["sh", "-c", "rm /etc/os-release && printf 'PRETTY_NAME=\"Debian GNU/Linux 11 (bullseye)\"\\n"
                                    "ID=debian\\nVERSION_ID=\"11\"\\n' > /etc/os-release"])  # fmt: skip
    process, recap = run_playbook(lab, tmp_path, **settings)
    assert process.returncode != 0
    assert "node_prep does not support Debian GNU/Linux 11 (bullseye)" in process.stdout
    assert "node_prep changed nothing on this node because it refused %s" % nodes[1] in process.stdout
    assert recap[nodes[0]] == dict(changed=0, unreachable=0, failed=1)
    # The files are as before (containerd's package config.toml included), containerd was not restarted.
    assert contents(lab, nodes, WRITTEN) == before_refusals
    assert [len(cri_starts(lab, node)) for node in nodes] == [1, 1]
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
        assert cri["sandbox_image"] == pause_image
        assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is systemd_cgroup
        assert cri["restrict_oom_score_adj"] is restrict_oom and cri["cni"]["bin_dir"] == cni_bin_dir
        # The real containerd was restarted and runs with it.
        assert lab.exec(node, ["systemctl", "is-active", "containerd"], check=False).stdout.strip() == "active"
        starts = cri_starts(lab, node)
        assert len(starts) == 2, node
        for running in ("SandboxImage:%s " % pause_image, "Options:map[SystemdCgroup:%s]" % str(systemd_cgroup).lower(),
                        "RestrictOOMScoreAdj:%s " % str(restrict_oom).lower(), "NetworkPluginBinDir:%s " % cni_bin_dir,
                        "ConfigPath:/etc/containerd/certs.d "):
            assert running in starts[-1], (node, running, starts[-1])
        plugins = lab.exec(node, ["ctr", "plugins", "ls"]).stdout
        assert re.search(r"^io\.containerd\.grpc\.v1\s+cri\s.*\sok\s*$", plugins, re.M), plugins
        hosts = tomllib.loads(read(lab, node, "/etc/containerd/certs.d/registry.k8s.io/hosts.toml"))
        assert hosts["server"] == "https://registry.k8s.io" and list(hosts["host"]) == [MIRROR]
        crictl = yaml.safe_load(read(lab, node, "/etc/crictl.yaml"))
        assert crictl["runtime-endpoint"] == "unix:///run/containerd/containerd.sock"

        assert read(lab, node, "/etc/apt/keyrings/kubernetes.asc") == FAKE_KEY
        source = read(lab, node, "/etc/apt/sources.list.d/kubernetes.list").splitlines()[-1]
        assert source == "deb [signed-by=/etc/apt/keyrings/kubernetes.asc] %s /" % kubernetes_repository
        assert read(lab, node, "/etc/apt/keyrings/docker.asc") == FAKE_DOCKER_KEY
        codename = re.search(r"^VERSION_CODENAME=(\S+)$", read(lab, node, "/etc/os-release"), re.M).group(1)
        source = read(lab, node, "/etc/apt/sources.list.d/docker.list").splitlines()[-1]
        assert source == "deb [signed-by=/etc/apt/keyrings/docker.asc] %s %s stable" % (docker_repository, codename)
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
    assert [len(cri_starts(lab, node)) for node in nodes] == [2, 2]  # no restart either

    # 5. Dropping the mirror removes its configuration (and nothing else) and containerd re-reads it.
    settings["node_prep_registry_mirrors"] = {}
    process, recap = run_playbook(lab, tmp_path, **settings)
    assert process.returncode == 0, process.stdout[-3000:]
    for node in nodes:
        assert not exists(lab, node, "/etc/containerd/certs.d/registry.k8s.io")
        assert exists(lab, node, "/etc/containerd/certs.d")
        assert recap[node]["changed"] == 2  # the mirror's directory, the restart of containerd
        assert len(cri_starts(lab, node)) == 3, node
    print("node_prep on 2 real nodes: %.1f s; runs (refused, refused, first, second, check, mirror dropped): %s s"
          % (time.monotonic() - started, ", ".join("%.1f" % seconds for seconds in RUN_SECONDS)))
