# -*- coding: utf-8 -*-
"""playbooks/upgrade.yml on the real lab: Kubernetes 1.36.3 -> 1.37.2 and kube-vip v1.0.4 -> v1.2.3 on 3 control
planes + 1 worker, air-gapped (bare nodes: node_prep installs 1.36.3 from its bundle, the upgrade 1.37.2 from the
other), while a client polls the VIP's /livez every 0.1 s.

1. node_prep.yml and site.yml bootstrap 1.36.3 with kube-vip v1.0.4.
2. A downgrade (vipadm_kubernetes_version 1.35.8) is refused with a sentence by the plan, and nothing changes.
3. The inventory names 1.37.2, kube-vip v1.2.3 and the 1.37.2 bundle, as a user would edit it. upgrade.yml --check
   prints the plan (kubeadm upgrade apply on cp1, node on the others) and changes nothing: every node still runs
   1.36.3.
4. upgrade.yml runs and the controller is killed when cp2's kubelet is about to be replaced (cp1 is done, cp2 is
   upgraded and drained); the next run resumes there: its plan has nothing left on cp1, only the kubelet and the
   uncordon on cp2, everything on cp3 and worker1; it finishes.
5. Then: the cluster's version (kubeadm-config) and every API server, kubelet and kubeadm are 1.37.2, every kube-vip
   runs v1.2.3 on admin.conf, etcd has its 3 members, no Node is cordoned, no node pulled an image (containerd's
   log), and the VIP's longest gap was shorter than the lease duration of the older kube-vip (5 s). A re-run changes
   nothing.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from lab.components import Builder
from lab.components.bundle import lab_bundle_dir, write_bundle
from lab.tests.conftest import lab_factory  # noqa: F401  (the fixture)
from tests.integration.test_day2_real import KUBECTL, VipPoller, etcd_members, nodes_ready
from tests.integration.test_site import assert_ok, run, run_until, text

# Plain pytest leaves it out (pytest.ini); make test runs it in its second lane (scripts/test.sh), `make test-upgrade` alone.
pytestmark = [pytest.mark.lab, pytest.mark.upgrade]

OLD, NEW = "1.36.3", "1.37.2"
OLD_KUBE_VIP, NEW_KUBE_VIP = "v1.0.4", "v1.2.3"
# kube-vip before v1.1.0 holds its Lease 5 s (module_utils/_kube_vip.lease_defaults): the goal for the VIP's gaps.
OLDER_LEASE_DURATION = 5.0
CONTROL_PLANES = ["cp1", "cp2", "cp3"]
NODES = CONTROL_PLANES + ["worker1"]


def node_versions(lab):
    """{Node: (kubeletVersion, unschedulable)} as the API server reports them."""
    items = json.loads(lab.exec("cp1", [*KUBECTL, "get", "nodes", "-o", "json"], timeout=60).stdout)["items"]
    return {i["metadata"]["name"]: (i["status"]["nodeInfo"]["kubeletVersion"], bool(i["spec"].get("unschedulable")))
            for i in items}


def binary_version(lab, node, argv):
    return lab.exec(node, argv, timeout=30).stdout.split()[-1]


def cluster_version(lab):
    configuration = lab.exec("cp1", [*KUBECTL, "get", "configmap", "kubeadm-config", "-n", "kube-system", "-o",
                                     "jsonpath={.data.ClusterConfiguration}"], timeout=60).stdout
    return re.search(r"^kubernetesVersion: (\S+)$", configuration, re.M).group(1)


def image_tag(manifest_text, name):
    return re.search(r"image: \S+/%s:(\S+)" % re.escape(name), manifest_text).group(1)


def set_inventory(lab, **values):
    """Edit the lab inventory's group_vars/all.yml as a user would: new values for these variables."""
    path = lab.inventory_path / "group_vars" / "all.yml"
    content = path.read_text()
    for name, value in values.items():
        content, count = re.subn(r"^%s: .*$" % name, "%s: %s" % (name, json.dumps(value)), content, flags=re.M)
        assert count == 1, name
    path.write_text(content)


def test_upgrade_keeps_the_vip(lab_factory):  # noqa: F811
    lab = lab_factory(control_planes=3, workers=1, kubernetes_version=OLD, kube_vip_version=OLD_KUBE_VIP,
                      node_software="bare")
    started = time.monotonic()
    # 1. The cluster of the older release.
    process, recap = run(lab, "playbooks/node_prep.yml")
    assert_ok(process, recap, NODES)
    process, recap = run(lab, "playbooks/site.yml")
    assert_ok(process, recap, NODES)
    nodes_ready(lab, "cp1", NODES)
    assert {name: version for name, (version, _) in node_versions(lab).items()} == {n: "v" + OLD for n in NODES}
    bootstrapped = time.monotonic() - started

    # 2. A downgrade is refused before anything changes.
    process, recap = run(lab, "playbooks/upgrade.yml", "-e", "vipadm_kubernetes_version=1.35.8")
    assert process.returncode != 0
    assert "that is a downgrade, which vipadm does not do" in process.stdout, process.stdout[-3000:]
    assert all(recap[node]["changed"] == 0 for node in recap), recap

    # 3. The new release in the inventory; --check prints the plan and changes nothing.
    new_build = Builder().build_pin(NEW, NEW_KUBE_VIP)
    new_bundle = write_bundle(new_build, lab_bundle_dir(new_build)).directory
    set_inventory(lab, vipadm_kubernetes_version=NEW, kube_vip_version=NEW_KUBE_VIP,
                  node_prep_bundle_dir=str(new_bundle))
    process, recap = run(lab, "playbooks/upgrade.yml", "--check")
    assert_ok(process, recap, NODES)
    assert f"cp1: install kubeadm {NEW}, kubeadm upgrade apply v{NEW}, drain" in process.stdout, process.stdout[-5000:]
    assert f"cp2: install kubeadm {NEW}, kubeadm upgrade node, drain" in process.stdout
    assert binary_version(lab, "cp1", ["kubeadm", "version", "-o", "short"]) == "v" + OLD
    assert cluster_version(lab) == "v" + OLD
    assert all(image_tag(text(lab, n, "/etc/kubernetes/manifests/kube-vip.yaml"), "kube-vip") == OLD_KUBE_VIP
               for n in CONTROL_PLANES)

    # 4. The upgrade, its controller killed when cp2's kubelet is about to be replaced, then resumed.
    ca = lab.node_file("cp1", "/etc/kubernetes/pki/ca.crt").read_text()
    poller = VipPoller(lab.vip, ca)
    poller.start()
    upgrade_started = time.monotonic()
    try:
        marker = "TASK [Install the kubelet and kubectl of"
        output = run_until(lab, "playbooks/upgrade.yml", lambda out: out.count(marker) >= 2, timeout=1200)
        killed_after = time.monotonic() - upgrade_started
        assert "kubeadm upgrade apply" in output or "kubeadm upgrade" in output
        assert node_versions(lab)["cp2"][1], "cp2 is not cordoned: the run was not killed after its drain"
        process, recap = run(lab, "playbooks/upgrade.yml", timeout=1500)
    finally:
        worst = poller.stop()
    upgraded = time.monotonic() - upgrade_started
    assert_ok(process, recap, NODES)
    assert f"cp1: at {NEW} already" in process.stdout, process.stdout[-6000:]
    assert f"cp2: drain, kubelet and kubectl {NEW}, restart the kubelet, uncordon" in process.stdout
    assert f"cp3: install kubeadm {NEW}, kubeadm upgrade node" in process.stdout
    assert f"Every node runs Kubernetes {NEW}." in process.stdout

    # 5. Everything runs the new release, kube-vip the new tag, nothing was pulled, and the VIP stayed.
    assert cluster_version(lab) == "v" + NEW
    assert node_versions(lab) == {n: ("v" + NEW, False) for n in NODES}
    for node in NODES:
        assert binary_version(lab, node, ["kubeadm", "version", "-o", "short"]) == "v" + NEW, node
        assert binary_version(lab, node, ["kubelet", "--version"]) == "v" + NEW, node
        assert lab.image_pulls(node) == [], node
    for node in CONTROL_PLANES:
        assert image_tag(text(lab, node, "/etc/kubernetes/manifests/kube-apiserver.yaml"), "kube-apiserver") == "v" + NEW
        manifest = text(lab, node, "/etc/kubernetes/manifests/kube-vip.yaml")
        assert image_tag(manifest, "kube-vip") == NEW_KUBE_VIP, node
        assert "path: /etc/kubernetes/admin.conf" in manifest and "super-admin.conf" not in manifest, node
    assert etcd_members(lab, "cp1") == CONTROL_PLANES
    assert worst < OLDER_LEASE_DURATION, f"the VIP did not answer for {worst:.1f} s; gaps {poller.gaps}"

    process, recap = run(lab, "playbooks/upgrade.yml")
    assert_ok(process, recap, NODES)
    assert all(recap[node]["changed"] == 0 for node in NODES), recap
    print(f"\nbootstrap of {OLD} {bootstrapped:.1f} s; upgrade killed after {killed_after:.1f} s, finished after "
          f"{upgraded:.1f} s; VIP probes {poller.probes}, failures {poller.failures}, gaps "
          f"{[round(g, 2) for g in poller.gaps]}, longest {worst:.2f} s")
