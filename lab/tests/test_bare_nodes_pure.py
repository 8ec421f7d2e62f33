"""Bare nodes without a lab: the option and its state, the inventory that points node_prep at the bundle,
and the reading of containerd's log (the lines are real ones of Debian's containerd 1.6.20 in a lab node).
No root; the node itself is tested in test_real_nodes.py."""

from __future__ import annotations

import json

import pytest
import yaml

from lab.core import Lab
from lab.nodes import real as realnode
from lab.nodes.node import OVERLAY_DIRS
from lab.plan import PlanError

LOG = """\
time="2026-12-05T19:39:39.167677603Z" level=info msg="containerd successfully booted in 0.027365s"
time="2026-12-05T19:39:39.169811114Z" level=info msg="Start streaming server"
time="2026-12-05T19:39:39.361085543Z" level=info msg="PullImage \\"registry.invalid/kube-apiserver:v1.37.2\\""
time="2026-12-05T19:39:39.361935738Z" level=info msg="trying next host" error="failed to do request: Head \\"https://registry.invalid/v2/kube-apiserver/manifests/v1.37.2\\": dial tcp: lookup registry.invalid on 198.51.100.2:53: no such host" host=registry.invalid
time="2026-12-05T19:39:39.362396482Z" level=error msg="PullImage \\"registry.invalid/kube-apiserver:v1.37.2\\" failed" error="failed to pull and unpack image"
time="2026-12-05T19:40:01.000000000Z" level=info msg="PullImage \\"registry.k8s.io/pause:3.10.2\\""
time="2026-12-05T19:40:02.000000000Z" level=info msg="PullImage \\"registry.k8s.io/pause:3.10.2\\" returns image reference \\"sha256:0123\\""
"""  # noqa: E501


def test_image_pulls_are_the_pull_requests_of_the_log_not_their_results():
    assert realnode.image_pulls(LOG) == ["registry.invalid/kube-apiserver:v1.37.2", "registry.k8s.io/pause:3.10.2"]
    assert realnode.image_pulls(LOG.split("\n", 2)[0] + "\n") == []


def test_a_log_without_info_lines_proves_nothing():
    with pytest.raises(ValueError, match="no info line"):
        realnode.image_pulls('time="2026-12-05T19:39:39.362396482Z" level=error msg="something"\n')
    with pytest.raises(ValueError):
        realnode.image_pulls("")


def test_bare_nodes_are_real_nodes():
    with pytest.raises(PlanError, match="need the real runtime"):
        Lab(name="t", state_dir="/tmp/x", subnet="198.51.100.0/27", runtime="bare", node_software="bare")
    with pytest.raises(PlanError, match="node software 'none' is not one of installed, bare"):
        Lab(name="t", state_dir="/tmp/x", subnet="198.51.100.0/27", node_software="none")


def _lab(tmp_path, node_software):
    lab = Lab(name="t", state_dir=tmp_path, subnet="198.51.100.0/27", control_planes=2, workers=1,
              kubernetes_version="1.37.2", kube_vip_version="v1.2.3", node_software=node_software,
              bundle_dir="/var/cache/b" if node_software == "bare" else None)  # fmt: skip
    (tmp_path / "inventory" / "group_vars").mkdir(parents=True)
    lab._write_inventory()
    lab._save()
    group_vars = yaml.safe_load((tmp_path / "inventory" / "group_vars" / "all.yml").read_text())
    hosts = yaml.safe_load((tmp_path / "inventory" / "hosts.yml").read_text())["all"]["children"]
    return lab, group_vars, hosts


def test_the_inventory_of_bare_nodes_names_the_bundle_and_what_the_default_route_would_give(tmp_path):
    lab, group_vars, hosts = _lab(tmp_path, "bare")
    assert group_vars["node_prep_source"] == "bundle" and group_vars["node_prep_bundle_dir"] == "/var/cache/b"
    assert group_vars["kube_vip_interface"] == "eth0"
    # node_prep's image archive cache on each node's own disk, never the machine's shared /var/cache
    cache = group_vars["node_prep_bundle_cache_dir"]
    assert any(cache.startswith(prefix + "/") for prefix in OVERLAY_DIRS), cache
    assert hosts["control_plane"]["hosts"]["cp1"] == {"ansible_host": "198.51.100.11",
                                                      "control_plane_advertise_address": "198.51.100.11"}  # fmt: skip
    assert hosts["workers"]["hosts"]["worker1"] == {"ansible_host": "198.51.100.13"}
    loaded = Lab.load(tmp_path)
    assert (loaded.node_software, loaded.bundle_dir) == ("bare", lab.bundle_dir)


def test_installed_nodes_keep_their_inventory_and_an_older_lab_json_is_installed(tmp_path):
    _, group_vars, hosts = _lab(tmp_path, "installed")
    assert not {"node_prep_source", "node_prep_bundle_dir", "kube_vip_interface"} & set(group_vars)
    assert hosts["control_plane"]["hosts"]["cp1"] == {"ansible_host": "198.51.100.11"}
    data = json.loads((tmp_path / "lab.json").read_text())
    del data["node_software"], data["bundle_dir"]
    (tmp_path / "lab.json").write_text(json.dumps(data))
    loaded = Lab.load(tmp_path)
    assert (loaded.node_software, loaded.bundle_dir) == ("installed", None)
