# -*- coding: utf-8 -*-
"""The verify role's etcd check names the difference between etcd's members and the control planes
(reliability finding R2: it used to fail with uri's "OK (365 bytes)"). Runs the role's etcd_members.yml
with real ansible-playbook on a registered member list given as data; about 3 s per case."""

import os
import subprocess
import sys

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


def run(tmp_path, member_names):
    members = [{"ID": str(1000 + i), "name": name, "peerURLs": ["https://198.51.100.%d:2380" % (11 + i)]}
               for i, name in enumerate(member_names)]
    play = {"name": "etcd members", "hosts": "control_plane", "gather_facts": False,
            "vars": {"verify_etcd": {"status": 200, "json": {"members": members}}, "preflight_init_host": "cp1"},
            "tasks": [{"ansible.builtin.import_role": {"name": "vipadm.kubeadm.verify", "tasks_from": "etcd_members"}}]}
    (tmp_path / "play.yml").write_text(yaml.safe_dump([play], sort_keys=False))
    inventory = {"control_plane": {"hosts": {
        name: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
               "preflight_node": {"hostname": "node-" + name}} for name in ("cp1", "cp2", "cp3")}}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml")],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False)


def test_members_equal_to_the_control_planes_pass(tmp_path):
    result = run(tmp_path, ["node-cp3", "node-cp1", "node-cp2"])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("members, missing, extra", [
    (["node-cp1", "node-cp2"], "node-cp3", None),
    (["node-cp1", "node-cp2", "node-cp3", "old-cp4"], None, "old-cp4"),
    (["node-cp1", "node-cp2", ""], "node-cp3", "(a member that has not started)"),
])
def test_a_difference_names_the_missing_and_the_extra_members(tmp_path, members, missing, extra):
    result = run(tmp_path, members)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "are not the control planes (node-cp1, node-cp2, node-cp3)" in output, output
    if missing:
        assert "not an etcd member: %s;" % missing in output, output
    else:
        assert "not an etcd member:" not in output, output
    if extra:
        assert "a member but no control plane of the inventory: %s;" % extra in output, output
    else:
        assert "no control plane of the inventory:" not in output, output


def run_nodes(tmp_path, registered):
    """The role's nodes.yml on a Node list given as data; the play holds cp1-cp3 and worker1."""
    play = {"name": "nodes", "hosts": "all", "gather_facts": False,
            "vars": {"verify_nodes": {"status": 200, "json": {"kind": "NodeList", "items": [
                {"metadata": {"name": name}} for name in registered]}}, "preflight_init_host": "cp1"},
            "tasks": [{"ansible.builtin.import_role": {"name": "vipadm.kubeadm.verify", "tasks_from": "nodes"}}]}
    (tmp_path / "play.yml").write_text(yaml.safe_dump([play], sort_keys=False))
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {"control_plane": {"hosts": {name: dict(local, preflight_node={"hostname": "node-" + name})
                                             for name in ("cp1", "cp2", "cp3")}},
                 "workers": {"hosts": {"worker1": dict(local, preflight_node={"hostname": "node-worker1"})}}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml")],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False)


def test_every_node_registered_passes_and_other_nodes_do_not_matter(tmp_path):
    result = run_nodes(tmp_path, ["node-worker1", "node-cp2", "node-cp1", "node-cp3", "not-in-the-inventory"])
    assert result.returncode == 0, result.stdout + result.stderr


def test_unregistered_nodes_are_named(tmp_path):
    result = run_nodes(tmp_path, ["node-cp1", "node-cp2"])
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "The API server (through the VIP) has no Node for node-cp3, node-worker1 (registered: node-cp1, " \
           "node-cp2): check the kubelet on those nodes" in output, output
