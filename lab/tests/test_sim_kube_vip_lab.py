"""kube-vip run by the simulated kubelet in three lab nodes, electing through a real API server.

Without kubeadm: the API server (with its etcd) runs on a fourth node, and the Pods' hostAliases
point ``kubernetes`` at it. What is checked is kube-vip's part of the field: one
leader, the VIP on its eth0 and announced by gratuitous ARP, the move of the VIP when the leader
node dies (within client-go's bound: lease duration + 2 × 2.2 × retry period) and when its kubelet
stops (lease released), and #684: with credentials that may not read Leases nobody ever leads.
"""

import os
import subprocess
import sys
import time

import pytest

import test_sim_api_support as support

sys.path.insert(0, os.path.join(support.REPO, ".collections"))

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(not (support.REPO / "lab/sim/apiserver.py").exists(), reason="needs lab.sim.apiserver"),
]

LEASE = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/plndr-cp-lock"
LEASE_DURATION, RENEW_DEADLINE, RETRY_PERIOD = 5, 3, 1
KUBELET_CONFIG = """apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
staticPodPath: /etc/kubernetes/manifests
"""


def kube_vip_manifest(vip, port, api_ip):
    from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kube_vip  # pylint: disable=import-outside-toplevel
    text = _kube_vip.render({
        "kind": "pod", "version": "v0.8.9", "address": vip, "interface": "eth0", "port": port,
        "controlplane": True, "arp": True, "leader_election": True,
        "lease_duration": LEASE_DURATION, "renew_deadline": RENEW_DEADLINE, "retry_period": RETRY_PERIOD,
    })
    assert "ip: 127.0.0.1" in text
    return text.replace("ip: 127.0.0.1", f"ip: {api_ip}")  # the API server is on another node here


def vip_holders(lab, vip):
    holders = []
    for node in lab.nodes:
        if not lab.is_running(node):
            continue
        out = lab.exec(node, ["ip", "-o", "-4", "addr", "show", "dev", "eth0"]).stdout
        if f" {vip}/" in out:
            holders.append(node.name)
    return holders


def neighbour_mac(lab, observer, vip):
    """The MAC ``observer`` has for the VIP after talking to it (a TCP connect triggers ARP)."""
    probe = (f"import socket; s = socket.socket(); s.settimeout(0.3); s.connect_ex(({vip!r}, 9)); "
             f"import subprocess; print(subprocess.run(['ip', 'neigh', 'show', {vip!r}], "
             f"capture_output=True, text=True).stdout)")
    return lab.exec(observer, ["python3", "-c", probe]).stdout


def sees(lab, observer, vip, node):
    """``observer`` reaches the VIP at ``node``'s MAC."""
    mac = lab.exec(node, ["cat", "/sys/class/net/eth0/address"]).stdout.strip()
    return mac in neighbour_mac(lab, observer, vip)


def in_node(lab, node, argv, log):
    """Start a long-running process inside ``node`` (ends with the node or the lab)."""
    command = " ".join(subprocess.list2cmdline([a]) for a in argv)
    lab.exec(node, ["sh", "-c", f"setsid {command} >{log} 2>&1 </dev/null &"])


@pytest.fixture
def control_plane(lab_factory, tmp_path):
    """Three control-plane nodes; etcd and the API server run on a fourth node (the worker)."""
    lab = lab_factory(control_planes=3, workers=1)
    server_node = lab.nodes[-1]
    etcd = support.EtcdServer(tmp_path, start=False)
    peer = f"http://127.0.0.1:{etcd.peer_port}"
    in_node(lab, server_node, [
        support.ETCD, "--name=sim", f"--data-dir={etcd.dir / 'data'}", f"--listen-client-urls={etcd.endpoint}",
        f"--advertise-client-urls={etcd.endpoint}", f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}", f"--initial-cluster=sim={peer}", "--client-cert-auth=true",
        f"--trusted-ca-file={etcd.ca_file}", f"--cert-file={etcd.server_cert}", f"--key-file={etcd.server_key}",
    ], tmp_path / "etcd.log")
    # The helper starts the API server on the controller, where this etcd is unreachable: it only
    # provides the PKI and the flags; the API server that counts runs in the server node.
    api = support.ApiServerProc(tmp_path, etcd)
    api.stop()
    flags = [f for f in api.flags[1:] if not f.startswith("--bind-address")] + [
        f"--bind-address={server_node.address}"]
    in_node(lab, server_node, ["env", f"PYTHONPATH={support.REPO}", f"LAB_SIM_CONFIG={api.env['LAB_SIM_CONFIG']}",
                               support.SYSTEM_PYTHON, "-m", "lab.sim.apiserver", *flags], tmp_path / "apiserver.log")
    api.server = f"https://{server_node.address}:{api.port}"
    admin = api.client(tls_server_name="kubernetes", timeout=2)
    support.wait_for(lambda: admin.request("GET", "/readyz", raw=True) == b"ok", 20,
                     what=f"apiserver\n{(tmp_path / 'apiserver.log').read_text()}")
    yield lab, api, admin, server_node.address


def write_node(lab, node, api, user, groups, api_ip):
    from lab.sim import kubeconfig  # pylint: disable=import-outside-toplevel
    cert, key = api.ca.issue(user, orgs=groups)
    config = kubeconfig.build(api.server, user, api.ca.cert_pem, cert, key)
    lab.exec(node, ["mkdir", "-p", "/etc/kubernetes/manifests", "/var/lib/kubelet"])
    lab.exec(node, ["sh", "-c", "umask 077; cat > /etc/kubernetes/admin.conf"], input=kubeconfig.dump(config))
    lab.exec(node, ["sh", "-c", "cat > /var/lib/kubelet/config.yaml"], input=KUBELET_CONFIG)
    lab.exec(node, ["sh", "-c", "cat > /etc/kubernetes/manifests/kube-vip.yaml"],
             input=kube_vip_manifest(lab.vip, api.port, api_ip))
    start_kubelet(lab, node)


def start_kubelet(lab, node):
    """Run the node's kubelet as its service would (the systemctl stand-in is not used here)."""
    lab.exec(node, ["sh", "-c", "setsid /usr/local/bin/kubelet >>/var/log/kubelet.log 2>&1 </dev/null & "
                                "echo $! > /run/kubelet.pid"])


def stop_kubelet(lab, node):
    lab.exec(node, ["sh", "-c", 'kill "$(cat /run/kubelet.pid)"'])


def wait_single_holder(lab, vip, timeout, exclude=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        holders = vip_holders(lab, vip)
        if len(holders) == 1 and holders[0] not in exclude:
            return holders[0], time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"VIP holders after {timeout} s: {vip_holders(lab, vip)}\n{node_logs(lab)}")


def node_logs(lab):
    """The kubelet and kube-vip logs of the running nodes, for failure messages."""
    text = []
    for node in lab.nodes:
        if lab.is_running(node):
            logs = lab.exec(node, ["sh", "-c", "tail -n 30 /var/lib/kubelet/sim-logs/*.log; "
                                               "tail -n 30 /var/log/kubelet.log"], check=False)
            text.append(f"== {node.name}\n{logs.stdout}{logs.stderr}")
    return "\n".join(text)


def test_vip_elects_one_leader_and_moves_when_the_leader_dies(control_plane):
    lab, api, admin, api_ip = control_plane
    for node in lab.nodes[:3]:
        write_node(lab, node, api, "kubernetes-admin", ["system:masters"], api_ip)
    leader, _ = wait_single_holder(lab, lab.vip, 30)
    assert admin.get(LEASE)["spec"]["holderIdentity"] == leader
    observer = lab.nodes[-1]
    assert sees(lab, observer, lab.vip, leader)

    # The leader node dies: no release, the others wait for the lease to expire.
    stopped = time.monotonic()
    lab.stop(leader)
    new_leader, moved = wait_single_holder(lab, lab.vip, LEASE_DURATION + 10, exclude=(leader,))
    # client-go semantics (docs/simulator-figures.md): lease + 2 × 2.2 × retry at worst; etcd and the
    # API server are on another node here, so no etcd election; 0.5 s: this test's polling.
    assert moved - stopped <= LEASE_DURATION + 2 * 2.2 * RETRY_PERIOD + 0.5
    assert admin.get(LEASE)["spec"]["holderIdentity"] == new_leader
    # The observer's ARP entry still pointed at the dead node: only the gratuitous ARP updates it.
    support.wait_for(lambda: sees(lab, observer, lab.vip, new_leader), 2, what="gratuitous ARP seen")

    # A graceful stop (kubelet stopped) removes the VIP and releases the lease: fast handover.
    stopped = time.monotonic()
    stop_kubelet(lab, new_leader)
    third, moved = wait_single_holder(lab, lab.vip, LEASE_DURATION + 10, exclude=(leader, new_leader))
    assert moved - stopped <= RETRY_PERIOD * 2.2 + 1.5
    support.wait_for(lambda: sees(lab, observer, lab.vip, third), 2, what="gratuitous ARP seen")


def test_without_rights_on_leases_nobody_leads(control_plane):
    """kube-vip #684: admin.conf of 1.29+ before kubeadm's ClusterRoleBinding exists."""
    lab, api, _, api_ip = control_plane
    node = lab.nodes[0]
    write_node(lab, node, api, "kubernetes-admin", ["kubeadm:cluster-admins"], api_ip)
    log = lab.node_file(node, "/var/lib/kubelet/sim-logs/kube-vip.log")
    support.wait_for(lambda: "is forbidden" in log.read_text(), 20, what="403 in the kube-vip log")
    time.sleep(LEASE_DURATION)
    assert vip_holders(lab, lab.vip) == []
    text = log.read_text()
    assert ('leases.coordination.k8s.io \\"plndr-cp-lock\\" is forbidden: User \\"kubernetes-admin\\" '
            'cannot get resource \\"leases\\"' in text) or \
        ('leases.coordination.k8s.io "plndr-cp-lock" is forbidden: User "kubernetes-admin" '
         'cannot get resource "leases"' in text)
