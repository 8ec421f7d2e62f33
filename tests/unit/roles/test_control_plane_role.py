# -*- coding: utf-8 -*-
"""The control_plane role refuses a kubelet cgroupDriver that contradicts vipadm_cgroup_driver (the driver
node_prep gives containerd) as its first task on the init host, before anything changes. Real
ansible-playbook on this machine (local connection, check mode) with the role's init entry point; about 3 s."""

import os
import re
import subprocess
import sys

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
GUARD = "Refuse a kubelet cgroupDriver that differs from vipadm_cgroup_driver"


def tasks_printed(output):
    """{task name: what Ansible printed under it} for the tasks of the play, in order."""
    sections = re.split(r"^TASK \[(?:vipadm\.kubeadm\.control_plane : )?(.*?)\] \**$", output, flags=re.M)
    return dict(zip(sections[1::2], sections[2::2]))


def test_a_contradicting_kubelet_cgroup_driver_is_refused_first_and_a_matching_one_passes(tmp_path):
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    hosts = {
        "cp_contradiction": dict(local, vipadm_cgroup_driver="cgroupfs",
                                 control_plane_kubelet_config={"cgroupDriver": "systemd", "failCgroupV1": False}),
        "cp_same": dict(local, vipadm_cgroup_driver="cgroupfs",
                        control_plane_kubelet_config={"cgroupDriver": "cgroupfs"}),
        "cp_defaults": dict(local),
        "cp_unknown_driver": dict(local, vipadm_cgroup_driver="cgroupsfs"),
        "cp_unknown_timeout": dict(local, vipadm_kubeadm_timeouts={"join": "5m"}),
        "cp_timeouts": dict(local, vipadm_kubeadm_timeouts={"discovery": "10m", "tls_bootstrap": "10m"}),
    }
    inventory = {"control_plane": {"hosts": hosts,
                                   "vars": {"kube_vip_address": "127.0.0.254", "vipadm_kubernetes_version": "1.36.3"}}}
    # No preflight facts: on the hosts the guard lets through, the next task stops on the undefined
    # preflight_cluster_exists, so nothing after the guard ever acts on this machine (and it is check mode).
    play = {"name": "init", "hosts": "control_plane", "gather_facts": False,
            "tasks": [{"ansible.builtin.include_role": {"name": "vipadm.kubeadm.control_plane", "tasks_from": "init"}}]}
    (tmp_path / "play.yml").write_text(yaml.safe_dump([play], sort_keys=False))
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    result = subprocess.run([ANSIBLE_PLAYBOOK, "--check", "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml")],
                            capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output

    printed = tasks_printed(output)
    guard = printed[GUARD]
    assert ("fatal: [cp_contradiction]: FAILED! => {\"changed\": false, \"msg\": \"control_plane_kubelet_config sets "
            "cgroupDriver systemd, but vipadm_cgroup_driver is cgroupfs (the driver node_prep gives containerd): set "
            "vipadm_cgroup_driver for the whole cluster and remove cgroupDriver from control_plane_kubelet_config, then "
            "run node_prep and this playbook again.\"}") in guard, output
    assert "skipping: [cp_same]" in guard and "skipping: [cp_defaults]" in guard, output
    # The guard is the first task after the argument validation: the refused host reached no task before it.
    names = [name for name in printed if not name.startswith("ansible.builtin.include_role")]
    assert names.index(GUARD) == 1 and names[0].startswith("Validating arguments against arg spec 'init'"), names
    validation = printed[names[0]]
    assert "[cp_contradiction]" not in validation.replace("ok: [cp_contradiction]", ""), output
    # A driver that is neither systemd nor cgroupfs stops at the role's argument validation.
    assert "value of vipadm_cgroup_driver must be one of: systemd, cgroupfs, got: cgroupsfs" in validation, output
    assert "cp_unknown_driver" not in guard, output
    # So does a timeout kubeadm has not; known ones pass.
    assert "vipadm_kubeadm_timeouts.join. Supported parameters include: control_plane_component_health_check" in validation, output
    assert "cp_unknown_timeout" not in guard and "skipping: [cp_timeouts]" in guard, output
