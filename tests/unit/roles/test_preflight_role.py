# -*- coding: utf-8 -*-
"""The preflight role refuses a node it cannot reach with a vipadm sentence naming it (reliability
finding R3), instead of ending on Ansible's SSH error. Real ansible-playbook: two control planes on this
machine (local connection) and one behind a closed loopback SSH port; the VIP is a loopback address, so
every probe stays on this machine. About 4 s."""

import os
import subprocess
import sys

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


def test_an_unreachable_node_is_named_and_nothing_after_the_preflight_runs(tmp_path):
    play = {"name": "preflight", "hosts": "control_plane", "gather_facts": False, "any_errors_fatal": True,
            "roles": [{"role": "vipadm.kubeadm.preflight"}],
            "post_tasks": [{"ansible.builtin.debug": {"msg": "AFTER THE PREFLIGHT"}}]}
    (tmp_path / "play.yml").write_text(yaml.safe_dump([play], sort_keys=False))
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {"control_plane": {
        "hosts": {"cp1": {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 1},
                  "cp2": local, "cp3": local},
        "vars": {"kube_vip_address": "127.0.0.254", "vipadm_kubernetes_version": "1.32.4",
                 "preflight_probe_arp": False, "preflight_vip_probe_timeout": 0.5}}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_HOST_KEY_CHECKING="false")
    result = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml")],
                            capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Preflight refused, nothing was changed" in output, output
    assert "cp1 is unreachable (Failed to connect to the host via ssh: ssh: connect to host 127.0.0.1 port 1: " \
           "Connection refused): power it on and check that SSH answers, or remove it from the inventory" in output, output
    assert "cp2 is unreachable" not in output and "cp3 is unreachable" not in output, output
    assert "AFTER THE PREFLIGHT" not in output, output


def test_the_role_hands_each_hosts_advertise_address_and_node_ips_to_the_family_checks(tmp_path):
    """Host variables of the control_plane and worker roles reach the preflight: an IPv6 advertise address and an
    IPv6 node IP in a cluster left with kubeadm's IPv4 Service subnet are refused, by host, before any change."""
    play = {"name": "preflight", "hosts": "control_plane:workers", "gather_facts": False, "any_errors_fatal": True,
            "roles": [{"role": "vipadm.kubeadm.preflight"}],
            "post_tasks": [{"ansible.builtin.debug": {"msg": "AFTER THE PREFLIGHT"}}]}
    (tmp_path / "play.yml").write_text(yaml.safe_dump([play], sort_keys=False))
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {
        "all": {"vars": {"kube_vip_address": "127.0.0.254", "vipadm_kubernetes_version": "1.32.4",
                         "kube_vip_interface": "lo", "preflight_probe_arp": False,
                         "preflight_vip_probe_timeout": 0.5}},
        "control_plane": {"hosts": {"cp1": dict(local, control_plane_advertise_address="::1")}},
        "workers": {"hosts": {"worker1": dict(local, worker_node_ip=["::1"])}}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    result = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml")],
                            capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "cp1 advertises control_plane_advertise_address ::1, an IPv6 address, but the cluster's first Service " \
           "subnet is IPv4 (kubeadm's default 10.96.0.0/12)" in output, output
    assert "worker1: worker_node_ip ::1 is IPv6 but the cluster has no IPv6 subnet" in output, output
    assert "AFTER THE PREFLIGHT" not in output, output
