"""kubeadm's failure paths run for real inside a lab node (the happy path is the bootstrap test's)."""

import re
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.lab



def test_init_failures_in_a_node(lab_factory):
    lab = lab_factory(control_planes=1, kubernetes_version="1.32.4", time_scale=0.01)
    # The VIP, held by nobody (no kube-vip here): on the node's link, so a connection fails after the
    # 3 s of unanswered ARP ("no route to host"), as on a real LAN.
    endpoint = f"{lab.vip}:6443"
    first = lab.exec("cp1", ["kubeadm", "init", "--control-plane-endpoint", endpoint], check=False)
    assert first.returncode == 1
    assert ("\t[ERROR FileContent--proc-sys-net-ipv4-ip_forward]: /proc/sys/net/ipv4/ip_forward contents "
            "are not set to 1\n") in first.stderr
    assert "[certs]" not in first.stdout  # nothing written when preflight fails

    lab.exec("cp1", ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    # <= 1.32 waits for the API through the control plane endpoint: without a VIP, init times out.
    second = lab.exec("cp1", ["kubeadm", "init", "--control-plane-endpoint", endpoint, "--upload-certs"],
                      check=False, timeout=120)
    assert second.returncode == 1
    assert "[kubelet-check] The kubelet is healthy after" in second.stdout
    assert "[api-check] The API server is not healthy after" in second.stdout
    assert second.stderr.endswith("error execution phase wait-control-plane: could not initialize a Kubernetes "
                                  "cluster: context deadline exceeded\n"
                                  "To see the stack trace of this error execute with --v=5 or higher\n")

    # Re-run without reset: preflight lists what the first run left (§7.2).
    third = lab.exec("cp1", ["kubeadm", "init", "--control-plane-endpoint", endpoint], check=False)
    assert third.returncode == 1
    names = re.findall(r"\[ERROR ([^\]]+)\]", third.stderr)
    assert "FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml" in names
    assert "Port-6443" in names  # the API server the kubelet started holds it

    reset = lab.exec("cp1", ["kubeadm", "reset", "-f"], check=False, timeout=120)
    assert reset.returncode == 0, reset.stderr
    left = lab.exec("cp1", ["ls", "-A", "/etc/kubernetes/manifests", "/etc/kubernetes/pki"]).stdout
    assert left.split() == ["/etc/kubernetes/manifests:", "/etc/kubernetes/pki:"]


# -- join failures against a real cluster --------------------------------------------------------------
# One cluster for the module: cp1 initialised on 1.33 (which waits for its API server locally, so no
# kube-vip is needed) with cp1's own address as the control plane endpoint; every join below fails
# in discovery or before anything is written, so the tests do not disturb each other.

JOIN_VERSION = "1.33.2"
JOIN_SCALE = 0.05  # init's 4m0s checks: 12 s; a discovery timeout of 40s: 2 s
WRONG_HASH = "sha256:" + "0" * 64
JOIN_CONFIG = """apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: {endpoint}
    token: {token}
    caCertHashes: [{ca_hash}]
timeouts:
  discovery: 40s
"""
CONTROL_PLANE = """controlPlane:
  certificateKey: {key}
"""


@pytest.fixture(scope="module")
def cluster(module_lab_factory):
    lab = module_lab_factory(control_planes=2, kubernetes_version=JOIN_VERSION, time_scale=JOIN_SCALE)
    for node in ("cp1", "cp2"):
        lab.exec(node, ["sh", "-ec", "sysctl -qw net.ipv4.ip_forward=1; systemctl enable kubelet"])
    endpoint = f"{lab.nodes[0].address}:6443"
    init = lab.exec("cp1", ["kubeadm", "init", "--control-plane-endpoint", endpoint, "--upload-certs"],
                    check=False, timeout=120)
    assert init.returncode == 0, init.stdout + init.stderr
    command = lab.exec("cp1", ["kubeadm", "token", "create", "--print-join-command"]).stdout.split()
    token = command[command.index("--token") + 1]
    ca_hash = command[command.index("--discovery-token-ca-cert-hash") + 1]
    return lab, endpoint, token, ca_hash


def join(lab, endpoint, token, ca_hash, certificate_key=None):
    config = JOIN_CONFIG.format(endpoint=endpoint, token=token, ca_hash=ca_hash)
    if certificate_key:
        config += CONTROL_PLANE.format(key=certificate_key)
    lab.exec("cp2", ["sh", "-c", "cat > /root/join.yaml"], input=config)
    result = lab.exec("cp2", ["kubeadm", "join", "--config", "/root/join.yaml"], check=False, timeout=120)
    # Nothing of a joined node is left behind by a join that failed in discovery or download-certs.
    left = lab.exec("cp2", ["sh", "-c", "ls /etc/kubernetes/kubelet.conf /etc/kubernetes/manifests/*.yaml "
                                        "2>/dev/null"], check=False).stdout
    assert left == "", left
    return result


def last_error(result):
    lines = result.stderr.splitlines()
    assert lines[-1] == "To see the stack trace of this error execute with --v=5 or higher", result.stderr
    return lines[-2]


def test_join_with_a_token_the_cluster_does_not_know(cluster):
    lab, endpoint, token, ca_hash = cluster
    unknown = "zzzzzz.0123456789abcdef"
    result = join(lab, endpoint, unknown, ca_hash)
    assert result.returncode == 1
    assert last_error(result) == ("error execution phase preflight: couldn't validate the identity of the API "
                                  'Server: could not find a JWS signature in the cluster-info ConfigMap for token '
                                  'ID "zzzzzz"')


def test_join_with_a_ca_hash_that_does_not_match(cluster):
    lab, endpoint, token, ca_hash = cluster
    result = join(lab, endpoint, token, WRONG_HASH)
    assert result.returncode == 1
    real = ca_hash.removeprefix("sha256:")
    assert last_error(result) == ("error execution phase preflight: couldn't validate the identity of the API "
                                  "Server: cluster CA found in cluster-info ConfigMap is invalid: none of the "
                                  f'public keys "sha256:{real}" are pinned')


def test_join_through_an_endpoint_that_does_not_answer(cluster):
    lab, _, token, ca_hash = cluster
    vip = re.escape(lab.vip)  # in the lab's subnet, held by nobody here: ARP gets no answer
    result = join(lab, f"{lab.vip}:6443", token, ca_hash)
    assert result.returncode == 1
    assert re.fullmatch(r'error execution phase preflight: couldn\'t validate the identity of the API Server: '
                        rf'Get "https://{vip}:6443/api/v1/namespaces/kube-public/configmaps/cluster-info'
                        rf'\?timeout=10s": dial tcp {vip}:6443: connect: no route to host',
                        last_error(result)), last_error(result)


def test_control_plane_join_with_an_expired_certificate_key(cluster):
    lab, endpoint, token, ca_hash = cluster
    # Two hours pass: upload-certs run by a kubeadm whose clock is 2000 times faster gives the Secret
    # (through its owner, a bootstrap token) 3.6 s to live; the controller-manager then removes both.
    fast = "/root/fast-clock.json"
    lab.exec("cp1", ["sh", "-c", f"cat > {fast}"],
             input=f'{{"kubernetes_version": "{JOIN_VERSION}", "time_scale": 0.0005}}')
    upload = lab.exec("cp1", ["env", f"LAB_SIM_CONFIG={fast}", "PYTHONPATH=" + str(REPO), "python3", "-m",
                              "lab.sim.kubeadm", "init", "phase", "upload-certs", "--upload-certs"])
    key = upload.stdout.split()[-1]
    deadline = time.monotonic() + 30
    while lab.exec("cp1", ["kubectl", "-n", "kube-system", "get", "secret", "kubeadm-certs"],
                   check=False).returncode == 0:
        assert time.monotonic() < deadline, "the kubeadm-certs Secret outlived its token"
        time.sleep(0.5)
    result = join(lab, endpoint, token, ca_hash, certificate_key=key)
    assert result.returncode == 1
    assert last_error(result) == (
        "error execution phase control-plane-prepare/download-certs: error downloading certs: error downloading "
        'the secret: Secret "kubeadm-certs" was not found in the "kube-system" Namespace. This Secret might have '
        "expired. Please, run `kubeadm init phase upload-certs --upload-certs` on a control plane to generate a "
        "new one")
