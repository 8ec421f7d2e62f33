"""The floor: the eight steps by a plain script over SSH, no Ansible.

The same kubeadm calls and the same waits as playbooks/site.yml, each one SSH command to the node
(through the lab's ssh_config, with its ControlMaster, as Ansible connects): what any bootstrap
tool must at least spend. Control planes join one at a time (etcd changes one member at a time);
workers join in parallel, as the playbook's worker play does, each with its own fresh token.

    floor.bootstrap(lab)  # -> {"phases": {name: seconds}, "total": seconds}
"""

import json
import os
import re
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, ".collections"))

# pylint: disable=wrong-import-position
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kube_vip  # noqa: E402
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _vip_probe  # noqa: E402

# The collection's defaults (roles/kube_vip/defaults, roles/control_plane/defaults).
KUBE_VIP_VERSION = "v1.2.3"
PORT = 6443
TOKEN_TTL = "15m"
MANIFEST = "/etc/kubernetes/manifests/kube-vip.yaml"
SUPER_ADMIN = "/etc/kubernetes/super-admin.conf"
ADMIN = "/etc/kubernetes/admin.conf"
CA = "/etc/kubernetes/pki/ca.crt"
WAIT_TIMEOUT = 300  # control_plane_vip_timeout
POLL = 0.2  # seconds between probes: the floor polls often; each probe is one curl inside the node
ENABLE_KUBELET = "systemctl is-enabled kubelet >/dev/null 2>&1 || systemctl enable kubelet"
CREDENTIAL_TRIES = 100  # x POLL + kubeadm's own time: well beyond a kube-vip leader change
JOIN_COMMAND = re.compile(r"kubeadm join \S+ --token \S+ --discovery-token-ca-cert-hash \S+")
CERTIFICATE_KEY = re.compile(r"^[0-9a-f]{64}$")


class FloorError(RuntimeError):
    """A step of the floor failed; the message names the node, the command and its output."""


class Shell:
    """One SSH command per call, through the lab's ssh_config (ControlMaster, lab key, known hosts)."""

    def __init__(self, ssh_config):
        self.ssh_config = str(ssh_config)
        self.commands = 0

    def run(self, node, script, stdin=None, timeout=WAIT_TIMEOUT + 60):
        self.commands += 1
        argv = ["ssh", "-F", self.ssh_config, "-o", "BatchMode=yes", node, "sh -ec " + shlex.quote(script)]
        result = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise FloorError(f"{node}: `{script}` failed (rc {result.returncode}):\n{result.stdout[-2000:]}"
                             f"\n{result.stderr[-2000:]}")
        return result.stdout

    def write(self, node, path, text):
        directory = os.path.dirname(path)
        self.run(node, f"umask 077; mkdir -p {directory}; cat > {path}.tmp; mv {path}.tmp {path}", stdin=text)


def kube_vip_manifest(vip, kubeconfig):
    """What `kube-vip manifest pod ...` prints for the collection's defaults (ARP, leader election)."""
    return _kube_vip.render({"kind": "pod", "version": KUBE_VIP_VERSION, "address": vip, "interface": "eth0",
                             "port": PORT, "controlplane": True, "arp": True, "leader_election": True,
                             "k8s_config_path": kubeconfig})


def wait_for_vip(shell, node, vip, insecure=False):
    """Until the API server answers /livez through the VIP, probed from `node` (as wait_for_vip does)."""
    trust = "-k" if insecure else f"--cacert {CA}"
    shell.run(node, f"timeout {WAIT_TIMEOUT} sh -c 'until curl -sf -o /dev/null --max-time 2 {trust} "
                    f"https://{vip}:{PORT}/livez; do sleep {POLL}; done'")


def wait_for_kube_vip_restart(shell, node, vip):
    """Until the kubelet has replaced `node`'s kube-vip after its manifest changed: wait_for_vip's own
    after_kube_vip_restart loop, with the VIP check and the Lease read done over SSH."""
    lease = f"kubectl --kubeconfig {ADMIN} -n kube-system get lease plndr-cp-lock -o json || true"
    changed_at = float(shell.run(node, f"date -r {MANIFEST} +%s.%N"))
    result = _vip_probe.wait_for_kube_vip_restart(
        vip, changed_at, lambda: json.loads(shell.run(node, lease)), WAIT_TIMEOUT, sleep=POLL,
        is_local=lambda address: bool(shell.run(node, f"ip -o addr show to {address}").strip()))
    if not result["restarted"]:
        raise FloorError(f"{node}: kube-vip was not replaced within {WAIT_TIMEOUT} s after its manifest changed: "
                         f"{result['reason']}")


def fresh_credentials(shell, init_node, control_plane):
    """A new token (and certificate key for a control plane) made on the init node right before a join."""
    script = f"kubeadm token create --kubeconfig {ADMIN} --ttl {TOKEN_TTL} --print-join-command"
    if control_plane:
        script += f" && kubeadm init phase upload-certs --upload-certs --kubeconfig {ADMIN}"
    # kubeadm talks to the API through the VIP (admin.conf), which is gone for a moment whenever a
    # leading kube-vip restarts (step 8 on the init node): retry, as a careful admin's script would.
    out = shell.run(init_node, f"for i in $(seq {CREDENTIAL_TRIES}); do if out=$({script} 2>&1); then "
                               f'echo "$out"; exit 0; fi; sleep {POLL}; done; echo "$out"; exit 1')
    command = JOIN_COMMAND.search(out)
    if not command:
        raise FloorError(f"{init_node}: no join command in {out!r}")
    if not control_plane:
        return command.group(0)
    key = out.strip().splitlines()[-1]
    if not CERTIFICATE_KEY.match(key):
        raise FloorError(f"{init_node}: no certificate key as the last line of {out!r}")
    return f"{command.group(0)} --control-plane --certificate-key {key}"


def join_worker(shell, init_node, node, vip):
    shell.run(node, ENABLE_KUBELET)
    wait_for_vip(shell, node, vip, insecure=True)
    shell.run(node, fresh_credentials(shell, init_node, control_plane=False))


def verify(shell, node, vip):
    """The node's own Node object through the VIP with its kubelet credential (the verify role's check)."""
    shell.run(node, f"curl -sf -o /dev/null --max-time 5 --cacert {CA} "
                    f"--cert /var/lib/kubelet/pki/kubelet-client-current.pem https://{vip}:{PORT}/api/v1/nodes/{node}")


def etcd_members(shell, init_node):
    out = shell.run(init_node, "curl -sf --max-time 5 --cacert /etc/kubernetes/pki/etcd/ca.crt "
                               "--cert /etc/kubernetes/pki/etcd/healthcheck-client.crt "
                               "--key /etc/kubernetes/pki/etcd/healthcheck-client.key "
                               "-X POST -d '{}' https://127.0.0.1:2379/v3/cluster/member/list")
    return sorted(re.findall(r'"name":"([^"]+)"', out))


def bootstrap(lab, parallel=20):
    """Bare (prepared) lab nodes -> HA control plane + workers. Returns the time of each phase."""
    shell = Shell(lab.ssh_config_path)
    control_planes = [n.name for n in lab.nodes if n.role == "control_plane"]
    workers = [n.name for n in lab.nodes if n.role == "worker"]
    init_node, joining = control_planes[0], control_planes[1:]
    vip = lab.vip
    phases = {}
    started = last = time.monotonic()

    def mark(name):
        nonlocal last
        now = time.monotonic()
        phases[name] = now - last
        last = now

    # Steps 1-6: kube-vip on super-admin.conf, kubeadm init with the VIP as endpoint, the VIP answers.
    # Every node gets its kubelet enabled first, as site.yml does (kubeadm starts it, never enables it).
    shell.run(init_node, ENABLE_KUBELET)
    shell.write(init_node, MANIFEST, kube_vip_manifest(vip, SUPER_ADMIN))
    shell.run(init_node, f"kubeadm init --control-plane-endpoint {vip}:{PORT} --upload-certs")
    wait_for_vip(shell, init_node, vip)
    mark("init (steps 1-6)")
    # Step 7: one control plane at a time, fresh credentials right before each join.
    for node in joining:
        shell.run(node, ENABLE_KUBELET)
        wait_for_vip(shell, node, vip, insecure=True)
        shell.run(node, fresh_credentials(shell, init_node, control_plane=True))
        wait_for_vip(shell, node, vip)
    mark("control plane joins (step 7)")
    # Step 8: kube-vip on the joined control planes, then the init node back to admin.conf.
    for node in joining:
        shell.write(node, MANIFEST, kube_vip_manifest(vip, ADMIN))
        wait_for_vip(shell, node, vip)
    shell.write(init_node, MANIFEST, kube_vip_manifest(vip, ADMIN))
    wait_for_kube_vip_restart(shell, init_node, vip)
    wait_for_vip(shell, init_node, vip)
    mark("kube-vip on every control plane (step 8)")
    if workers:
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            list(pool.map(lambda w: join_worker(shell, init_node, w, vip), workers))
    mark("worker joins")
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(lambda n: verify(shell, n, vip), control_planes + workers))
    members = etcd_members(shell, init_node)
    if members != sorted(control_planes):
        raise FloorError(f"etcd members {members}, expected {sorted(control_planes)}")
    mark("verify")
    return {"phases": phases, "total": time.monotonic() - started, "ssh_commands": shell.commands}
