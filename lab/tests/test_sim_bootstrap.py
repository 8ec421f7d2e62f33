"""The eight steps by hand on three lab nodes (shell commands through lab.exec, no Ansible).

1. kube-vip manifest on cp1 (made by the collection's ``_kube_vip.render``), on super-admin.conf
   from 1.29; 2. ``kubeadm init --control-plane-endpoint VIP:6443 --upload-certs``; 3-6. the kubelet
   runs the Pods, kube-vip takes the VIP, init finishes; then kube-vip goes back to admin.conf;
   7. joins one at a time with fresh credentials (token and certificate key made right before);
   8. the manifest is copied to each joined node. Then: the VIP answers a real TLS client with the
   admin certificate, three etcd members, three Nodes; the leader node dies and the VIP moves.
And the trap of kube-vip #684: on admin.conf during init, init times out as in the field.
"""

import json
import os
import re
import socket
import ssl
import sys
import tempfile
import time

import pytest

import test_sim_api_support as support

sys.path.insert(0, os.path.join(support.REPO, ".collections"))

pytestmark = [pytest.mark.lab, pytest.mark.skipif(
    not (support.REPO / "lab/sim/kubeadm/cli.py").exists(), reason="needs the kubeadm simulator")]

KUBE_VIP_VERSION = "v0.8.9"  # lease 5/3/1
LEASE_DURATION, RETRY_PERIOD = 5, 1
# client-go: a follower polls every retry period × (1 + up to 1.2 jitter) and counts the lease
# duration from the poll that last saw the Lease change, so a node death can take up to
# lease + 2 × 2.2 × retry to be noticed (typically lease + ~1 s: see docs/simulator-figures.md).
# The dead node may also have been etcd's leader: the survivors elect a new one within 2 × etcd's
# 1 s election timeout before the Lease can be written. 0.5 s: this test's polling (exec into nodes).
ETCD_ELECTION = 2 * 1.0
FAILOVER_BOUND = LEASE_DURATION + 2 * 2.2 * RETRY_PERIOD + ETCD_ELECTION + 0.5
MANIFEST = "/etc/kubernetes/manifests/kube-vip.yaml"


def kube_vip_manifest(vip, kubeconfig):
    from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kube_vip  # pylint: disable=import-outside-toplevel
    return _kube_vip.render({"kind": "pod", "version": KUBE_VIP_VERSION, "address": vip, "interface": "eth0",
                             "controlplane": True, "arp": True, "leader_election": True,
                             "k8s_config_path": kubeconfig})


def sh(lab, node, script, timeout=300, check=True):
    result = lab.exec(node, ["sh", "-ec", script], check=False, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{node}: {script}\nrc={result.returncode}\n{result.stdout}\n{result.stderr}\n"
                             f"{node_logs(lab, node)}")
    return result


def node_logs(lab, node):
    result = lab.exec(node, ["sh", "-c", "tail -n 25 /var/lib/kubelet/sim-logs/*.log /var/log/lab/kubelet.log"],
                      check=False)
    return result.stdout + result.stderr


def prepare(lab, node):
    sh(lab, node, "sysctl -qw net.ipv4.ip_forward=1; systemctl enable kubelet; mkdir -p /etc/kubernetes/manifests")


def write(lab, node, path, text):
    lab.exec(node, ["sh", "-c", f"umask 077; cat > {path}"], input=text)


def vip_holders(lab):
    return [n.name for n in lab.nodes if lab.is_running(n) and f" {lab.vip}/" in
            lab.exec(n, ["ip", "-o", "-4", "addr", "show", "dev", "eth0"]).stdout]


class AdminClient:
    """A real client: Python ssl, the cluster CA and the admin client certificate from admin.conf."""

    def __init__(self, lab, node):
        from lab.sim import kubeconfig  # pylint: disable=import-outside-toplevel
        creds = kubeconfig.load_credentials(str(lab.node_file(node, "/etc/kubernetes/admin.conf")))
        self.tmp = tempfile.mkdtemp(prefix="admin-client-")
        cert, key = os.path.join(self.tmp, "c.pem"), os.path.join(self.tmp, "k.pem")
        support.write(cert, creds.cert_pem)
        support.write(key, creds.key_pem)
        self.context = ssl.create_default_context(cadata=creds.ca_pem.decode())
        self.context.load_cert_chain(cert, key)
        self.server = creds.server

    def get(self, path, address, timeout=2.0):
        with socket.create_connection((address, 6443), timeout=timeout) as raw:
            with self.context.wrap_socket(raw, server_hostname=address) as tls:
                tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {address}:6443\r\nAccept: application/json\r\n"
                            "Connection: close\r\n\r\n".encode())
                data = b""
                while chunk := tls.recv(65536):
                    data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split()[1])
        if b"chunked" in head.lower():
            body = dechunk(body)
        return status, json.loads(body) if body.startswith(b"{") else body


def dechunk(body):
    out = b""
    while body:
        size_text, _, rest = body.partition(b"\r\n")
        size = int(size_text, 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return out


def init_first(lab, kubeconfig):
    cp1 = lab.nodes[0]
    prepare(lab, cp1)
    write(lab, cp1, MANIFEST, kube_vip_manifest(lab.vip, kubeconfig))
    return sh(lab, cp1, f"kubeadm init --control-plane-endpoint {lab.vip}:6443 --upload-certs", check=False,
              timeout=600)


ETCDCTL = ("ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt "
           "--cert=/etc/kubernetes/pki/etcd/server.crt --key=/etc/kubernetes/pki/etcd/server.key")


def join_control_plane(lab, node):
    """Step 7 for one node. No pacing: kubeadm itself retries the member add until etcd's strict
    reconfiguration check lets it in, and returns once the learner is promoted and every member answers."""
    prepare(lab, node)
    sh(lab, node, join_command(lab), timeout=600)


def switch_kube_vip_to_admin_conf(lab, node):
    """After init: kube-vip back on admin.conf. The kubelet restarts the Pod (the VIP is gone for that
    moment, as in the field); wait until the new kube-vip holds it again."""
    log = "/var/lib/kubelet/sim-logs/kube-vip.log"
    sh(lab, node, f"sed -i 's#path: /etc/kubernetes/super-admin.conf#path: /etc/kubernetes/admin.conf#' {MANIFEST}")
    support.wait_for(lambda: lab.node_file(node, log).read_text().count("starting container kube-vip") >= 2, 30,
                     interval=0.1, what="kube-vip restarted on admin.conf")
    support.wait_for(lambda: vip_holders(lab) == [node.name], 30, interval=0.1, what="VIP back after the restart")


def join_command(lab):
    """Fresh credentials on cp1, right before a join: a new token and a new certificate key."""
    cp1 = lab.nodes[0]
    command = sh(lab, cp1, "kubeadm token create --print-join-command").stdout.strip()
    key = sh(lab, cp1, "kubeadm init phase upload-certs --upload-certs").stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"[0-9a-f]{64}", key), key
    return f"{command} --control-plane --certificate-key {key}"


def test_hand_run_bootstrap_then_the_leader_dies(lab_factory):
    lab = lab_factory(control_planes=3, kubernetes_version="1.32.4", time_scale=1.0)
    started = time.monotonic()
    init = init_first(lab, "/etc/kubernetes/super-admin.conf")
    assert init.returncode == 0, f"{init.stdout}\n{init.stderr}\n{node_logs(lab, lab.nodes[0])}"
    assert "Your Kubernetes control-plane has initialized successfully!" in init.stdout
    cp1 = lab.nodes[0]
    switch_kube_vip_to_admin_conf(lab, cp1)
    for node in lab.nodes[1:]:
        join_control_plane(lab, node)
        write(lab, node, MANIFEST, kube_vip_manifest(lab.vip, "/etc/kubernetes/admin.conf"))
    elapsed = time.monotonic() - started
    print(f"hand-run bootstrap on 3 nodes: {elapsed:.1f} s")

    client = AdminClient(lab, cp1)
    support.wait_for(lambda: len(vip_holders(lab)) == 1, 30, what="one VIP holder")
    status, nodes = client.get("/api/v1/nodes", lab.vip)
    assert status == 200 and sorted(n["metadata"]["name"] for n in nodes["items"]) == ["cp1", "cp2", "cp3"]
    status, leases = client.get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases", lab.vip)
    assert status == 200
    holder = {lease["metadata"]["name"]: lease["spec"].get("holderIdentity") for lease in leases["items"]}
    assert holder["plndr-cp-lock"] == vip_holders(lab)[0]
    members = sh(lab, cp1, f"{ETCDCTL} member list").stdout
    assert len([line for line in members.splitlines() if ", started, " in line]) == 3, members
    assert all(line.endswith(", false") for line in members.splitlines()), members  # learners all promoted

    # The leader node dies: the VIP moves within FAILOVER_BOUND and the API answers through it.
    leader = vip_holders(lab)[0]
    stopped = time.monotonic()
    lab.stop(leader)
    support.wait_for(lambda: len(vip_holders(lab)) == 1, LEASE_DURATION + 10, interval=0.05, what="VIP moved")
    moved = time.monotonic() - stopped
    assert moved <= FAILOVER_BOUND, moved
    new_leader = vip_holders(lab)[0]
    assert new_leader != leader
    support.wait_for(lambda: client.get("/api/v1/nodes", lab.vip, timeout=1)[0] == 200, 10,
                     what="API through the moved VIP")
    print(f"VIP failover {leader} -> {new_leader}: {moved:.2f} s")


def test_kube_vip_on_admin_conf_makes_init_time_out_on_1_29_and_later(lab_factory):
    # 1.32 waits for the API server through the control plane endpoint: the VIP that never comes.
    # time_scale 0.03: the 4m0s API check lasts 7.2 s, long enough for kube-vip's 403 to be logged.
    lab = lab_factory(control_planes=1, kubernetes_version="1.32.4", time_scale=0.03)
    init = init_first(lab, "/etc/kubernetes/admin.conf")
    output = init.stdout + init.stderr
    assert init.returncode == 1, output
    assert "[api-check] The API server is not healthy after" in output, output
    log = lab.node_file(lab.nodes[0], "/var/lib/kubelet/sim-logs/kube-vip.log").read_text()
    assert 'is forbidden: User \\"kubernetes-admin\\" cannot get resource \\"leases\\"' in log or \
        'is forbidden: User "kubernetes-admin" cannot get resource "leases"' in log
    assert vip_holders(lab) == []
