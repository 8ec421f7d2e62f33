"""IPv6 and dual stack on the real lab (kubeadm, kubelet, containerd, etcd, the control plane and kube-vip built
from upstream sources), each on 3 control planes of a lab with IPv6 beside IPv4 (lab.plan.ipv6_subnet, a /64 of
2001:db8::/32), prepared by node_prep.yml and bootstrapped by site.yml:

1. An IPv6 cluster: the endpoint is the IPv6 VIP ([2001:db8:...]:6443), every API server advertises its IPv6
   address, the kubelets report their IPv6 address, Pods and Services are IPv6 only. kube-vip holds the VIP with
   Neighbor Discovery: the controller reaches it, and its neighbour entry for the VIP names the holder's MAC.
2. A dual-stack cluster with an IPv4 VIP: both families in podSubnet and serviceSubnet, the kubelets report both
   addresses, every Node gets a range of each family, and a RequireDualStack Service gets a ClusterIP of each.

Both pass the checks of the IPv4 bootstrap (test_real_lab): every Node Ready with the pinned kubelet, etcd has
every control plane, a re-run changes nothing, and the VIP answers /livez again after its holder is powered off
(kube-vip's 5/3/1 leases from the start, to keep each test short). Three control planes, not two: etcd keeps no
quorum when one of two members is off, and kube-vip could then renew no Lease. No worker: the worker's join is
the control planes' without --control-plane, and the pod network across nodes is the IPv4 test's.
Measured (2026-12-06, 1.37.2, kube-vip v1.2.3, load average 16-18 from other lab suites on the 2 cores): IPv6
354.9 s (site.yml 204.6 s, VIP back 7.5 s after its holder went off), dual stack 367.1 s (site.yml 186.3 s, 6.0 s).
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import yaml

from lab.tests.conftest import lab_factory  # noqa: F401  (the fixture)
from tests.integration.test_real_lab import kubectl, livez, wait_for
from tests.integration.test_site import assert_ok, run

pytestmark = pytest.mark.lab

CONTROL_PLANES = ("cp1", "cp2", "cp3")
# Inside 2001:db8::/32 and apart from every lab's node /64 (2001:db8:c633:64xx::/64).
POD_SUBNET6 = "2001:db8:1::/56"  # a /64 per Node, the controller-manager's default IPv6 node mask
SERVICE_SUBNET6 = "2001:db8:2::/112"  # kube-apiserver takes at most /108 of IPv6
LEASE, RENEW, RETRY = 5, 3, 1
# The machine's 2 cores run the three control planes and the test: kube-vip's timers run late under load.
SCHEDULING_MARGIN = 3.0
# kube-vip v1.2.3 adds an IPv6 VIP with duplicate address detection (the kernel's default): the address stays
# tentative, unusable, for about a second (one solicitation, RetransTimer 1 s) after the new leader adds it.
DAD_SECONDS = 1.5
# The IPv6 node needs forwarding for its Pods, and kubeadm's preflight checks it for an IPv6 advertise address.
IPV6_SYSCTL = {"net.ipv4.ip_forward": 1, "net.bridge.bridge-nf-call-iptables": 1,
               "net.bridge.bridge-nf-call-ip6tables": 1, "net.ipv6.conf.all.forwarding": 1,
               "net.ipv6.conf.default.forwarding": 1}


def write_host_vars(lab, per_host: dict[str, dict]) -> None:
    directory = lab.inventory_path / "host_vars"
    directory.mkdir(exist_ok=True)
    for host, variables in per_host.items():
        (directory / f"{host}.yml").write_text(yaml.safe_dump(variables))


def etcd_members(lab, loopback: str) -> list[str]:
    """The started members' names, asked on cp1's loopback: kubeadm has etcd listen on ::1 instead of 127.0.0.1
    when the advertise address is IPv6."""
    result = lab.exec("cp1", ["etcdctl", f"--endpoints=https://{loopback}:2379",
                              "--cacert=/etc/kubernetes/pki/etcd/ca.crt",
                              "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt",
                              "--key=/etc/kubernetes/pki/etcd/healthcheck-client.key", "member", "list"],
                      check=False, timeout=30)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return sorted(line.split(", ")[2] for line in result.stdout.splitlines() if ", started, " in line)


def controller_neighbour(lab, address: str) -> str:
    """The controller's neighbour entry for address on the lab bridge (NDP for IPv6, ARP for IPv4)."""
    return subprocess.run(["ip", "neigh", "show", address, "dev", lab.plan.bridge],
                          capture_output=True, text=True, check=True).stdout


def ready_nodes(lab):
    items = json.loads(kubectl(lab, "get", "nodes", "-o", "json"))["items"]
    ready = {item["metadata"]["name"] for item in items
             if any(c["type"] == "Ready" and c["status"] == "True" for c in item["status"]["conditions"])}
    return items if ready == set(CONTROL_PLANES) else None


def vip_holders(lab, vip: str) -> list[str]:
    family = "-6" if ":" in vip else "-4"
    return [node for node in CONTROL_PLANES if lab.is_running(node)
            and f" {vip}/" in lab.exec(node, ["ip", "-o", family, "addr", "show", "dev", "eth0"]).stdout]


def bootstrap(lab, extra_vars: dict, etcd_loopback: str) -> tuple[float, list[dict]]:
    """node_prep and site.yml with extra_vars; a re-run that changes nothing; seconds of site.yml, the Nodes."""
    names = list(CONTROL_PLANES)
    process, recap = run(lab, "playbooks/node_prep.yml", "-e", json.dumps({"node_prep_sysctl": IPV6_SYSCTL}))
    assert_ok(process, recap, names)
    started = time.monotonic()
    process, recap = run(lab, "playbooks/site.yml", "-e", json.dumps(extra_vars))
    assert_ok(process, recap, names)
    seconds = time.monotonic() - started
    items = wait_for(lambda: ready_nodes(lab), 180, "every node Ready",
                     lambda: kubectl(lab, "get", "nodes,pods", "-A", "-o", "wide"))
    for item in items:
        assert item["status"]["nodeInfo"]["kubeletVersion"] == f"v{lab.kubernetes_version}", item["metadata"]["name"]
    assert etcd_members(lab, etcd_loopback) == names
    process, recap = run(lab, "playbooks/site.yml", "-e", json.dumps(extra_vars))
    assert_ok(process, recap, names)
    assert all(recap[n]["changed"] == 0 for n in names), recap
    return seconds, items


def failover(lab, vip: str) -> tuple[str, float]:
    """Power off the VIP holder; seconds until the VIP answers /livez again from the controller."""
    ca = lab.node_file("cp1", "/etc/kubernetes/pki/ca.crt").read_text()
    holders = wait_for(lambda: vip_holders(lab, vip), 60, "one control plane holding the VIP")
    assert len(holders) == 1, holders
    wait_for(lambda: livez(vip, ca), 60, "the VIP answering")
    lab.stop(holders[0])
    off = time.monotonic()
    wait_for(lambda: livez(vip, ca), 120, "the VIP answering after its holder went off")
    seconds = time.monotonic() - off
    bound = LEASE + 2 * 2.2 * RETRY + 1 + SCHEDULING_MARGIN + (DAD_SECONDS if ":" in vip else 0)
    assert seconds <= bound, f"the VIP came back {seconds:.1f} s after {holders[0]} went off, over {bound:.1f} s"
    new_holders = vip_holders(lab, vip)
    assert len(new_holders) == 1 and new_holders[0] != holders[0], new_holders
    return holders[0], seconds


def leases() -> dict:
    return {"kube_vip_lease_duration": LEASE, "kube_vip_renew_deadline": RENEW, "kube_vip_retry_period": RETRY}


def internal_ips(item: dict) -> list[str]:
    return [a["address"] for a in item["status"]["addresses"] if a["type"] == "InternalIP"]


def test_ipv6_control_plane(lab_factory):  # noqa: F811
    started = time.monotonic()
    lab = lab_factory(control_planes=3, workers=0, ipv6=True)
    nodes = {node.name: node for node in lab.nodes}
    write_host_vars(lab, {name: {"control_plane_advertise_address": node.address6,
                                 "control_plane_node_ip": [node.address6]} for name, node in nodes.items()})
    extra = dict(leases(), kube_vip_address=lab.vip6, control_plane_pod_subnet=POD_SUBNET6,
                 control_plane_service_subnet=SERVICE_SUBNET6)
    site_seconds, items = bootstrap(lab, extra, "[::1]")

    for item in items:  # each kubelet reports its IPv6 address, each Node has an IPv6 range
        name = item["metadata"]["name"]
        assert internal_ips(item) == [nodes[name].address6], item["status"]["addresses"]
        assert [c.endswith("/64") and c.startswith("2001:db8:1:") for c in item["spec"]["podCIDRs"]] == [True]
    service = json.loads(kubectl(lab, "get", "service", "kubernetes", "-o", "json"))["spec"]
    assert service["clusterIPs"] == ["2001:db8:2::1"] and service["ipFamilies"] == ["IPv6"], service
    endpoints = json.loads(kubectl(lab, "get", "endpointslices", "-l", "kubernetes.io/service-name=kubernetes",
                                   "-o", "json"))["items"]
    assert sorted(a for s in endpoints for e in s["endpoints"] for a in e["addresses"]) == sorted(
        node.address6 for node in lab.nodes)  # every API server advertises its IPv6 address
    kubeconfig = lab.node_file("cp2", "/etc/kubernetes/admin.conf").read_text()
    assert f"server: https://[{lab.vip6}]:6443\n" in kubeconfig

    # kube-vip answers Neighbor Discovery for the VIP: the controller resolved it to the holder's MAC, and to the
    # new holder's after the failover (kube-vip's unsolicited advertisements override the old entry).
    ca = lab.node_file("cp1", "/etc/kubernetes/pki/ca.crt").read_text()
    holder = wait_for(lambda: vip_holders(lab, lab.vip6), 60, "one control plane holding the VIP")
    assert len(holder) == 1 and livez(lab.vip6, ca), holder
    assert f"lladdr {lab.plan.node(holder[0]).mac}" in controller_neighbour(lab, lab.vip6)
    old_holder, seconds = failover(lab, lab.vip6)
    new_holder = vip_holders(lab, lab.vip6)[0]
    assert f"lladdr {lab.plan.node(new_holder).mac}" in controller_neighbour(lab, lab.vip6)
    print(f"IPv6 control plane 3+0: site.yml {site_seconds:.1f} s; VIP [{lab.vip6}] back {seconds:.1f} s after "
          f"{old_holder} was powered off (leases {LEASE}/{RENEW}/{RETRY}), now on {new_holder}; test "
          f"{time.monotonic() - started:.1f} s")


def test_dual_stack_with_an_ipv4_vip(lab_factory):  # noqa: F811
    started = time.monotonic()
    lab = lab_factory(control_planes=3, workers=0, ipv6=True)
    nodes = {node.name: node for node in lab.nodes}
    write_host_vars(lab, {name: {"control_plane_node_ip": [node.address, node.address6]}
                          for name, node in nodes.items()})
    extra = dict(leases(), control_plane_pod_subnet=f"10.244.0.0/16,{POD_SUBNET6}",
                 control_plane_service_subnet=f"10.96.0.0/16,{SERVICE_SUBNET6}")
    site_seconds, items = bootstrap(lab, extra, "127.0.0.1")

    for item in items:  # both addresses reported, a range of each family
        name = item["metadata"]["name"]
        assert internal_ips(item) == [nodes[name].address, nodes[name].address6], item["status"]["addresses"]
        cidrs = item["spec"]["podCIDRs"]
        assert len(cidrs) == 2 and cidrs[0].startswith("10.244.") and cidrs[1].startswith("2001:db8:1:"), cidrs
    dual = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dual", "namespace": "default"},
            "spec": {"ipFamilyPolicy": "RequireDualStack", "selector": {"app": "none"},
                     "ports": [{"port": 80}]}}  # fmt: skip
    kubectl(lab, "apply", "-f", "-", stdin=json.dumps(dual))
    service = json.loads(kubectl(lab, "get", "service", "dual", "-o", "json"))["spec"]
    assert service["ipFamilies"] == ["IPv4", "IPv6"], service
    assert service["clusterIPs"][0].startswith("10.96.") and service["clusterIPs"][1].startswith("2001:db8:2::")
    kubeconfig = lab.node_file("cp2", "/etc/kubernetes/admin.conf").read_text()
    assert f"server: https://{lab.vip}:6443\n" in kubeconfig

    old_holder, seconds = failover(lab, lab.vip)
    print(f"dual stack 3+0, IPv4 VIP: site.yml {site_seconds:.1f} s; VIP {lab.vip} back {seconds:.1f} s after "
          f"{old_holder} was powered off (leases {LEASE}/{RENEW}/{RETRY}); test {time.monotonic() - started:.1f} s")
