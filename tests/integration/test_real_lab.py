"""The product on real components: 3 control planes + 1 worker of the real lab (kubeadm, kubelet,
containerd, etcd, the control plane and kube-vip built from upstream sources), prepared by
node_prep.yml and bootstrapped by site.yml.

Asserts what a user sees: every node Ready with the pinned kubelet on containerd; a re-run changes
nothing; kubeadm's waits given by vipadm_kubeadm_timeouts reach init and the joins (the static Pods'
startup probes follow them); a pod on one node reaches a pod on another, by address and through a ClusterIP Service
found with the cluster's DNS; the VIP answers again after its holder is powered off, within
kube-vip's client-go bound, with its default leases and with 5/3/1 given by a re-run (figures printed).
"""

from __future__ import annotations

import json
import re
import socket
import ssl
import time

import pytest

from lab.tests.conftest import lab_factory  # noqa: F401  (the fixture)
from tests.integration.test_site import assert_ok, etcd_members, run, text

pytestmark = pytest.mark.lab

KUBECTL = ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf"]
# kube-vip v1.2.3's leader election defaults (lease, renew deadline, retry), as the role renders them.
LEASE, RETRY = 15, 2
# The whole cluster shares the machine's 2 cores with the test: kube-vip's timers and its Lease calls
# run late when the machine is loaded (measured: 5/3/1 over 10.4 s at load 11).
SCHEDULING_MARGIN = 3.0
# kubeadm's waits for init and every join, as a user on slow machines sets them (kubeadm's defaults: 4m, 5m).
TIMEOUTS = ("-e", json.dumps({"vipadm_kubeadm_timeouts": {"control_plane_component_health_check": "5m",
                                                           "tls_bootstrap": "6m", "discovery": "6m"}}))


def kubectl(lab, *args, stdin=None):
    result = lab.exec("cp1", [*KUBECTL, *args], input=stdin, check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def wait_for(predicate, timeout, what, explain=None):
    """predicate's first true value within timeout s; else fail, with what explain() says of the state."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} within {timeout} s" + (f":\n{explain()}" if explain else ""))
        time.sleep(1)


def describe(lab, pod):
    result = lab.exec("cp1", [*KUBECTL, "describe", "pod", pod], check=False, timeout=60)
    return result.stdout + result.stderr


def ready_nodes(lab):
    items = json.loads(kubectl(lab, "get", "nodes", "-o", "json"))["items"]
    ready = {
        item["metadata"]["name"]
        for item in items
        if any(c["type"] == "Ready" and c["status"] == "True" for c in item["status"]["conditions"])
    }
    return items if ready == {n.name for n in lab.nodes} else None


def pod_manifests(etcd_image: str) -> str:
    """An etcd server pod on worker1 behind a ClusterIP Service, to be reached from a pod on cp2."""
    tolerate = [{"operator": "Exists"}]
    server = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "lab-etcd", "namespace": "default", "labels": {"app": "lab-etcd"}},
        "spec": {
            "nodeName": "worker1",
            "tolerations": tolerate,
            "containers": [{
                "name": "etcd",
                "image": etcd_image,
                "command": ["etcd", "--data-dir=/tmp/etcd", "--listen-client-urls=http://0.0.0.0:2379",
                            "--advertise-client-urls=http://127.0.0.1:2379"],
                "ports": [{"containerPort": 2379}],
            }],
        },
    }  # fmt: skip
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "lab-etcd", "namespace": "default"},
        "spec": {"selector": {"app": "lab-etcd"}, "ports": [{"port": 2379, "targetPort": 2379}]},
    }
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [server, service]})


def client_pod(etcd_image: str, server_ip: str) -> str:
    return json.dumps({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "lab-etcd-client", "namespace": "default"},
        "spec": {
            "nodeName": "cp2",
            "tolerations": [{"operator": "Exists"}],
            # kube-proxy and CoreDNS pick the new Service up within seconds: retry until then.
            "restartPolicy": "OnFailure",
            "containers": [{
                "name": "client",
                "image": etcd_image,
                "command": ["etcdctl", "--dial-timeout=5s", "endpoint", "health",
                            f"--endpoints=http://{server_ip}:2379,http://lab-etcd.default.svc.cluster.local:2379"],
            }],
        },
    })  # fmt: skip


def livez(address: str, ca_pem: str) -> bool:
    context = ssl.create_default_context(cadata=ca_pem)
    context.check_hostname = False  # the VIP is in the certificate; the CA is what matters here
    try:
        with socket.create_connection((address, 6443), timeout=0.5) as raw:
            with context.wrap_socket(raw) as tls:
                tls.settimeout(1)
                tls.sendall(b"GET /livez HTTP/1.0\r\nHost: kubernetes\r\n\r\n")
                return tls.recv(64).split(b" ")[1:2] == [b"200"]
    except OSError:
        return False


def test_bootstrap_on_real_components(lab_factory):  # noqa: F811
    lab = lab_factory(control_planes=3, workers=1, runtime="real")
    names = [n.name for n in lab.nodes]
    process, recap = run(lab, "playbooks/node_prep.yml")
    assert_ok(process, recap, names)

    started = time.monotonic()
    process, recap = run(lab, "playbooks/site.yml", *TIMEOUTS)
    assert_ok(process, recap, names)
    bootstrap = time.monotonic() - started
    # kubeadm sizes the startup probes of the static Pods it writes from its control plane wait, on the init
    # host and on the control planes that joined: 5 minutes / 10 s periods.
    for node in ("cp1", "cp2", "cp3"):
        for component in ("etcd", "kube-apiserver"):
            manifest = text(lab, node, f"/etc/kubernetes/manifests/{component}.yaml")
            assert re.search(r"startupProbe:\n\s+failureThreshold: 30\n", manifest), (node, manifest)
    items = wait_for(lambda: ready_nodes(lab), 180, "every node Ready")
    ready = time.monotonic() - started
    for item in items:
        info = item["status"]["nodeInfo"]
        assert info["kubeletVersion"] == f"v{lab.kubernetes_version}", item["metadata"]["name"]
        assert info["containerRuntimeVersion"].startswith("containerd://"), info
    assert etcd_members(lab, "cp1") == ["cp1", "cp2", "cp3"]

    process, recap = run(lab, "playbooks/site.yml", *TIMEOUTS)
    assert_ok(process, recap, names)
    assert all(recap[n]["changed"] == 0 for n in names), recap

    # Pod networking: a pod on cp2 reaches a pod on worker1 by address and by Service name.
    etcd_image = next(r for r in lab.components.image_references if "/etcd:" in r)
    kubectl(lab, "apply", "-f", "-", stdin=pod_manifests(etcd_image))
    server_ip = wait_for(
        lambda: json.loads(kubectl(lab, "get", "pod", "lab-etcd", "-o", "json"))["status"].get("podIP")
        if json.loads(kubectl(lab, "get", "pod", "lab-etcd", "-o", "json"))["status"].get("phase") == "Running" else None,
        90, "the etcd pod on worker1 running", lambda: describe(lab, "lab-etcd"),
    )  # fmt: skip
    kubectl(lab, "apply", "-f", "-", stdin=client_pod(etcd_image, server_ip))
    phase = wait_for(
        lambda: json.loads(kubectl(lab, "get", "pod", "lab-etcd-client", "-o", "json"))["status"].get("phase")
        in ("Succeeded", "Failed") and json.loads(kubectl(lab, "get", "pod", "lab-etcd-client", "-o", "json"))["status"]["phase"],
        150, "the client pod on cp2 finished", lambda: describe(lab, "lab-etcd-client"),
    )  # fmt: skip
    logs = kubectl(lab, "logs", "lab-etcd-client")
    assert phase == "Succeeded", logs
    assert f"http://{server_ip}:2379 is healthy" in logs, logs
    assert "http://lab-etcd.default.svc.cluster.local:2379 is healthy" in logs, logs

    # Failover: power off the VIP holder; the VIP answers again from another control plane.
    ca = lab.node_file("cp1", "/etc/kubernetes/pki/ca.crt").read_text()
    default_holder, default_failover = failover(lab, ca, LEASE, RETRY)
    lab.start(default_holder)
    # Powered on, the node's etcd catches up; with two of three members down the next power-off would
    # leave etcd without quorum, and no kube-vip could take the Lease.
    wait_for(lambda: etcd_healthy(lab), 600, "every etcd member healthy after the power-on")  # ~5 min at load 20

    # Shorter leases (5/3/1) given to a running cluster by a plain re-run: every manifest is rewritten.
    process, recap = run(lab, "playbooks/site.yml", "-e", json.dumps(
        {"kube_vip_lease_duration": 5, "kube_vip_renew_deadline": 3, "kube_vip_retry_period": 1}))  # fmt: skip
    assert_ok(process, recap, names)
    for node in ("cp1", "cp2", "cp3"):
        manifest = lab.node_file(node, "/etc/kubernetes/manifests/kube-vip.yaml").read_text()
        assert "name: vip_leaseduration\n      value: \"5\"" in manifest, node
    # The kubelets replace kube-vip on their own time: until every one runs the new manifest and the holder
    # has written the shorter lease, followers still count 15 s (client-go reads the Lease's duration).
    wait_for(lambda: kube_vip_runs_lease(lab, 5), 120, "every kube-vip running with the 5 s lease")
    short_holder, short_failover = failover(lab, ca, 5, 1)
    print(f"real lab 3+1: site.yml {bootstrap:.1f} s, all Ready {ready:.1f} s after the start; VIP back "
          f"{default_failover:.1f} s after {default_holder} was powered off (leases 15/10/2), "
          f"{short_failover:.1f} s after {short_holder} (5/3/1)")


def kube_vip_runs_lease(lab, seconds: int) -> bool:
    """Every control plane's kube-vip mirror Pod carries vip_leaseduration=<seconds> and is Ready, and the
    Lease it elects with says <seconds>. False while the API cannot be read (kube-vip restarting)."""
    def read(*args):
        result = lab.exec("cp1", [*KUBECTL, "-n", "kube-system", "get", *args, "-o", "json"], check=False, timeout=60)
        return json.loads(result.stdout) if result.returncode == 0 else None

    pods = read("pods")
    lease = read("lease", "plndr-cp-lock")
    if pods is None or lease is None:
        return False
    pods = pods["items"]
    kube_vips = [p for p in pods if p["metadata"]["name"].startswith("kube-vip-")]
    if len(kube_vips) != 3:
        return False
    for pod in kube_vips:
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0].get("env", [])}
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))
        if env.get("vip_leaseduration") != str(seconds) or not ready:
            return False
    return lease["spec"].get("leaseDurationSeconds") == seconds


def etcd_healthy(lab) -> bool:
    result = lab.exec("cp1", ["sh", "-c", "ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 "
                                          "--cacert=/etc/kubernetes/pki/etcd/ca.crt "
                                          "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt "
                                          "--key=/etc/kubernetes/pki/etcd/healthcheck-client.key "
                                          "endpoint health --cluster"], check=False, timeout=60)  # fmt: skip
    return result.returncode == 0 and (result.stdout + result.stderr).count("is healthy") == 3  # etcdctl 3.4: stderr


def failover(lab, ca: str, lease: int, retry: int) -> tuple[str, float]:
    """Power off the VIP holder; seconds until the VIP answers /livez again (within client-go's bound:
    followers count the lease from their last poll that saw it change, polling every retry x 1..2.2)."""
    holders = wait_for(
        lambda: [n for n in ("cp1", "cp2", "cp3")
                 if f" {lab.vip}/" in lab.exec(n, ["ip", "-o", "-4", "addr", "show"]).stdout],
        60, "one control plane holding the VIP",
    )  # fmt: skip
    assert len(holders) == 1, holders
    wait_for(lambda: livez(lab.vip, ca), 60, "the VIP answering")
    lab.stop(holders[0])
    off = time.monotonic()
    wait_for(lambda: livez(lab.vip, ca), 120, "the VIP answering after its holder went off")
    seconds = time.monotonic() - off
    bound = lease + 2 * 2.2 * retry + 1 + SCHEDULING_MARGIN
    assert seconds <= bound, f"the VIP came back {seconds:.1f} s after {holders[0]} went off, over {bound:.1f} s"
    return holders[0], seconds
