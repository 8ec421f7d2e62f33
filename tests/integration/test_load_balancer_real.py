"""Services of type LoadBalancer served by kube-vip's services mode, on the real lab: 3 control planes + 1 worker
(the real kubeadm, kubelet, containerd, etcd, kube-proxy and kube-vip v1.2.3 built from upstream sources), and the
lab's own HTTP server image (lab/components/http_echo, built by the lab's builder like its other images and
imported into each node's containerd).

node_prep.yml, then site.yml bootstraps with kube_vip_services, kube_vip_services_election and kube_vip_services_addresses (a range of
the lab's slice); a re-run and a --check run change nothing. Then, from the controller (the machine, outside the
cluster):
* a Deployment on the worker behind a Service with the kube-vip.io/loadbalancerIPs annotation and
  externalTrafficPolicy Cluster answers on its address; one control plane holds it, and its Lease
  kubevip-<service>, the Service's kube-vip.io/vipHost annotation and the interfaces agree on which;
* externalTrafficPolicy Local, as kube-vip v1.2.3 does it: a Service (spec.loadBalancerIP) whose only Pod runs on a
  control plane is announced by that control plane and the Pod sees the controller's own address; a Service
  whose Pods run only on the worker (where no kube-vip runs) is announced by no node;
* an address that another machine on the link holds (the lab's DNS namespace) is refused by site.yml before it
  changes anything, while the address a control plane's kube-vip holds passes;
* the holder of the first address is cut off (its link down): the address moves to another control plane and
  answers again, within kube-vip's client-go bound (time printed).
Cost: one real lab; passed in 141 s on 2 cores, the refused run included (site.yml done 99.4 s after the start, image
import and node_prep included; cp2 cut off, its address answered again 16.1 s later from cp1).
"""

from __future__ import annotations

import http.client
import json
import subprocess
import time

import pytest

from lab.components.build import HTTP_ECHO_REFERENCE, Builder
from lab.nodes import real as realnode
from lab.tests.conftest import lab_factory  # noqa: F401  (the fixture)
from tests.integration.test_real_lab import wait_for
from tests.integration.test_site import assert_ok, run

pytestmark = pytest.mark.lab

KUBECTL = ["kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf"]
CONTROL_PLANES = ("cp1", "cp2", "cp3")
LOCAL_NODE = "cp3"  # the control plane that runs the only Pod of the Local Service
# kube-vip v1.2.3's leader election defaults (lease, retry), as the role renders them, and the load of the
# machine's 2 cores shared with the whole cluster (see test_real_lab.py).
LEASE, RETRY, SCHEDULING_MARGIN = 15, 2, 3.0


def kubectl(lab, node, *args, stdin=None, check=True):
    """kubectl on a control plane against its own API server (not through the VIP, which may be moving)."""
    server = f"https://{lab.node(node).address}:6443"
    result = lab.exec(node, [*KUBECTL, "--server", server, *args], input=stdin, check=False, timeout=60)
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout if result.returncode == 0 else None


def get(lab, node, kind, name):
    text = kubectl(lab, node, "get", kind, name, "-o", "json", check=False)
    return json.loads(text) if text else None


def http_answer(address: str):
    """The JSON answer of http-echo on address:80 from the controller, None while nothing answers."""
    try:
        connection = http.client.HTTPConnection(address, 80, timeout=0.5)
        connection.request("GET", "/")
        response = connection.getresponse()
        body = response.read()
        connection.close()
        return json.loads(body) if response.status == 200 else None
    except (OSError, ValueError, http.client.HTTPException):
        return None


def first_answer(address: str, since: float, timeout: float):
    """(answer, seconds after since) of the first request that http-echo answers on address, polling every 0.2 s."""
    deadline = since + timeout
    while time.monotonic() < deadline:
        answer = http_answer(address)
        if answer:
            return answer, time.monotonic() - since
        time.sleep(0.2)
    raise AssertionError(f"nothing answered on {address} within {timeout} s")


def holders(lab, address, nodes):
    """The nodes with address on an interface."""
    return [n for n in nodes if f" {address}/" in lab.exec(n, ["ip", "-o", "-4", "addr", "show"], check=False).stdout]


def deployment(name, node, replicas, tolerate=False):
    spec = {
        "nodeSelector": {"kubernetes.io/hostname": node},
        "containers": [{
            "name": "http-echo", "image": HTTP_ECHO_REFERENCE, "imagePullPolicy": "Never",
            "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
            "ports": [{"containerPort": 8080}],
            "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1},
        }],
    }  # fmt: skip
    if tolerate:  # a control plane's NoSchedule taint
        spec["tolerations"] = [{"operator": "Exists"}]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}  # fmt: skip


def service(name, app, policy, annotation=None, load_balancer_ip=None):
    metadata = {"name": name, "namespace": "default"}
    if annotation:
        metadata["annotations"] = {"kube-vip.io/loadbalancerIPs": annotation}
    spec = {"type": "LoadBalancer", "externalTrafficPolicy": policy, "selector": {"app": app},
            "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}
    if load_balancer_ip:
        spec["loadBalancerIP"] = load_balancer_ip
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}


def ingress(svc) -> list[str]:
    return [i.get("ip") for i in ((svc or {}).get("status", {}).get("loadBalancer", {}).get("ingress") or [])]


def test_load_balancer_services_answer_follow_local_policy_and_move_when_their_holder_is_cut_off(lab_factory):  # noqa: F811
    started = time.monotonic()
    echo = Builder(log=lambda line: None).http_echo()  # cached after the first build (a few seconds cold)
    lab = lab_factory(control_planes=3, workers=1)
    names = [n.name for n in lab.nodes]
    for node in names:
        realnode.import_images(lambda argv, node=node: lab._exec_argv(node, argv), node, echo.images)

    hosts = list(lab.plan.subnet.hosts())
    assert str(hosts[-1]) == lab.vip  # the lab's VIP: the subnet's last usable address
    first, last = hosts[-6], hosts[-2]  # 5 addresses below the VIP, above the nodes
    cluster_ip, local_ip, unannounced_ip = str(hosts[-6]), str(hosts[-5]), str(hosts[-4])
    settings = json.dumps({"kube_vip_services": True, "kube_vip_services_election": True,
                           "kube_vip_services_addresses": [f"{first}-{last}"]})

    process, recap = run(lab, "playbooks/node_prep.yml")  # sysctls, modules, containerd's config
    assert_ok(process, recap, names)
    process, recap = run(lab, "playbooks/site.yml", "-e", settings)
    assert_ok(process, recap, names)
    bootstrap = time.monotonic() - started
    for node in CONTROL_PLANES:
        manifest = lab.node_file(node, "/etc/kubernetes/manifests/kube-vip.yaml").read_text()
        assert "- name: svc_enable\n      value: \"true\"" in manifest, node
        assert "- name: svc_election\n      value: \"true\"" in manifest, node

    workloads = [
        deployment("echo", "worker1", 2),
        service("echo", "echo", "Cluster", annotation=cluster_ip),
        deployment("echo-cp", LOCAL_NODE, 1, tolerate=True),
        service("echo-local", "echo-cp", "Local", load_balancer_ip=local_ip),
        service("echo-local-worker", "echo", "Local", annotation=unannounced_ip),
    ]
    kubectl(lab, "cp1", "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": workloads}))

    # While the Pods start: a re-run with services mode on changes nothing, and so does --check.
    for options in ((), ("--check",)):
        process, recap = run(lab, "playbooks/site.yml", "-e", settings, *options)
        assert_ok(process, recap, names)
        assert all(recap[n]["changed"] == 0 for n in names), (options, recap)

    # externalTrafficPolicy Cluster: the address answers from a Pod on the worker, one control plane holds it.
    answer = wait_for(lambda: http_answer(cluster_ip), 120, f"http-echo answering on {cluster_ip}",
                      lambda: kubectl(lab, "cp1", "get", "pods,svc,leases", "-o", "wide", check=False))
    assert answer["node"] == "worker1", answer
    held = holders(lab, cluster_ip, names)
    assert len(held) == 1 and held[0] in CONTROL_PLANES, held
    holder = held[0]
    assert answer["client"] in {n.address for n in lab.nodes} - {lab.node("worker1").address}, answer  # SNAT
    wait_for(lambda: (get(lab, "cp1", "lease", "kubevip-echo") or {}).get("spec", {}).get("holderIdentity") == holder,
             30, f"the Lease kubevip-echo held by {holder}")
    svc = wait_for(lambda: (lambda s: s if ingress(s) == [cluster_ip] else None)(get(lab, "cp1", "service", "echo")),
                   30, f"the Service echo with the ingress {cluster_ip}")
    assert svc["metadata"]["annotations"].get("kube-vip.io/vipHost") == holder, svc["metadata"]

    # Another machine on the nodes' link (the lab's DNS namespace) holds an address added to the list: site.yml
    # refuses it before changing anything, naming that machine; cluster_ip, which the same probes hear answer from
    # a control plane's kube-vip, passes.
    squatted, dns = str(hosts[-7]), lab.plan.dns_netns
    link = json.loads(subprocess.run(["ip", "-n", dns, "-j", "link", "show", "eth0"], check=True, capture_output=True,
                                     text=True).stdout)
    subprocess.run(["ip", "-n", dns, "addr", "add", f"{squatted}/32", "dev", "eth0"], check=True)
    try:
        taken = json.dumps({"kube_vip_services": True, "kube_vip_services_election": True,
                            "kube_vip_services_addresses": [f"{first}-{last}", squatted]})
        process, recap = run(lab, "playbooks/site.yml", "-e", taken)
    finally:
        subprocess.run(["ip", "-n", dns, "addr", "del", f"{squatted}/32", "dev", "eth0"], check=True)
    assert process.returncode != 0 and all(recap.get(n, {}).get("changed", 0) == 0 for n in names), recap
    mac = link[0]["address"].lower()
    assert (f"kube_vip_services_addresses: {squatted} (from {mac}) already answers ARP (seen from cp1, cp2 and cp3) "
            "though no node holds it" in " ".join(process.stdout.split())), process.stdout[-4000:]
    assert f"{cluster_ip} (from" not in process.stdout, process.stdout[-4000:]

    # externalTrafficPolicy Local: announced only where a ready Pod of the Service runs; the client address kept.
    answer = wait_for(lambda: http_answer(local_ip), 60, f"http-echo answering on {local_ip}")
    assert answer["node"] == LOCAL_NODE and answer["client"] == lab.controller_address, answer
    assert holders(lab, local_ip, names) == [LOCAL_NODE]
    assert (get(lab, "cp1", "lease", "kubevip-echo-local") or {}).get("spec", {}).get("holderIdentity") == LOCAL_NODE
    assert holders(lab, unannounced_ip, names) == [], "a Local Service without a Pod on a control plane was announced"
    assert ingress(get(lab, "cp1", "service", "echo-local-worker")) == []
    assert http_answer(unannounced_ip) is None

    # The holder of the Cluster Service's address is cut off: the address moves and answers again.
    others = [n for n in CONTROL_PLANES if n != holder]
    lab.isolate(holder)
    answer, failover = first_answer(cluster_ip, time.monotonic(), 120)
    assert answer["node"] == "worker1", answer
    moved = holders(lab, cluster_ip, others)
    assert len(moved) == 1, moved
    bound = LEASE + 2 * 2.2 * RETRY + 1 + SCHEDULING_MARGIN
    assert failover <= bound, f"{cluster_ip} answered again {failover:.1f} s after {holder} was cut off, over {bound:.1f} s"
    wait_for(lambda: (get(lab, others[0], "lease", "kubevip-echo") or {}).get("spec", {}).get("holderIdentity")
             == moved[0], 30, f"the Lease kubevip-echo held by {moved[0]}")
    print(f"real lab 3+1, kube-vip services mode with per-Service election: site.yml done {bootstrap:.1f} s after the "
          f"start; {cluster_ip} (Cluster) held by {holder}, answered again {failover:.1f} s after {holder} was cut off, "
          f"from {moved[0]}; {local_ip} (Local) held by {LOCAL_NODE}, client address kept; {unannounced_ip} (Local, "
          f"Pods on the worker only) announced by no node; {time.monotonic() - started:.1f} s in all")
