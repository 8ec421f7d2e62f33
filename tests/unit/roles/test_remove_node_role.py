# -*- coding: utf-8 -*-
"""playbooks/remove_node.yml's refusals before anything changes, with real ansible-playbook (about 3 s per case):
no remove_node, a host the inventory does not list, a host outside control_plane and workers, the only control
plane, and no other control plane that answers (one UNREACHABLE, one without a control plane: the facts play keeps
an unreachable node in the play and names what each control plane is)."""

import os
import subprocess
import sys

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
LOCAL = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
UNREACHABLE = {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 1}  # connection refused


def run(tmp_path, hosts, *extra):
    inventory = {
        "all": {
            "children": {
                "control_plane": {"hosts": {name: hosts[name] for name in hosts if name.startswith("cp")}},
                "workers": {"hosts": {name: hosts[name] for name in hosts if name.startswith("w")}},
                "bastions": {"hosts": {name: hosts[name] for name in hosts if name.startswith("b")}},
            }
        }
    }
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_HOST_KEY_CHECKING="false",
        ANSIBLE_TIMEOUT="5",
    )
    result = subprocess.run(
        [
            ANSIBLE_PLAYBOOK,
            "-i",
            str(tmp_path / "inventory.yml"),
            os.path.join(REPO, "playbooks", "remove_node.yml"),
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=180,
        check=False,
    )
    return result.returncode, " ".join((result.stdout + result.stderr).split())


@pytest.mark.parametrize(
    "extra, message",
    [
        ((), "Name the node to remove: -e remove_node=<inventory host> (one of cp1, cp2, w1)."),
        (
            ("-e", "remove_node=cp9"),
            "cp9 is not a host of this inventory (control_plane: cp1, cp2; workers: w1): nothing was " "changed.",
        ),
        (
            ("-e", "remove_node=b1"),
            "b1 is a host of this inventory but in neither control_plane nor workers, so it is not a "
            "node of the cluster: nothing was changed.",
        ),
    ],
)
def test_a_name_that_is_no_node_of_the_cluster_is_refused(tmp_path, extra, message):
    rc, output = run(tmp_path, {"cp1": LOCAL, "cp2": LOCAL, "w1": LOCAL, "b1": LOCAL}, *extra)
    assert rc != 0 and message in output, output
    assert "PLAY [Read the control planes" not in output, output


def test_the_only_control_plane_of_the_inventory_is_refused(tmp_path):
    rc, output = run(tmp_path, {"cp1": LOCAL, "w1": LOCAL}, "-e", "remove_node=cp1")
    assert (
        rc != 0
        and "cp1 is the only control plane of the inventory: removing the last control plane would end "
        "the cluster" in output
    ), output


def test_no_other_control_plane_that_answers_is_refused(tmp_path):
    # cp2 does not answer; cp3 answers (this machine) but holds no kubeadm control plane
    rc, output = run(
        tmp_path, {"cp1": UNREACHABLE, "cp2": UNREACHABLE, "cp3": LOCAL, "w1": LOCAL}, "-e", "remove_node=cp1"
    )
    assert rc != 0, output
    assert (
        "No control plane other than cp1 answers and holds a control plane (cp2: does not answer; cp3: none)" in output
    ), output
    assert "TASK [vipadm.kubeadm.remove_node : Plan the removal" not in output, output
