# -*- coding: utf-8 -*-
"""The Step 7 play of site.yml stops at the first lost control plane (reliability finding R1).

Runs real ansible-playbook on a copy of the play's own keywords and pre_tasks (the role's tasks replaced
by a marker), with one join host that is UNREACHABLE (ssh to a closed loopback port): no later host
joins and no later play starts. About 3 s per case."""

import os
import subprocess
import sys

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
ORDER = ["cp2", "cp3", "cp4"]


def join_play():
    with open(os.path.join(REPO, "playbooks", "site.yml")) as handle:
        plays = yaml.safe_load(handle)
    (play,) = [p for p in plays if p["name"].startswith("Step 7")]
    return play


def run(tmp_path, lost):
    """site.yml's Step 7 play with the role replaced by a ping (the join); cp2, cp3, cp4 join in that order."""
    play = dict(join_play(), hosts="joiners", tasks=[{"name": "join", "ansible.builtin.ping": None}])
    later = {"name": "later", "hosts": "localhost", "gather_facts": False,
             "tasks": [{"ansible.builtin.debug": {"msg": "LATER PLAY RAN"}}]}
    (tmp_path / "play.yml").write_text(yaml.safe_dump([play, later], sort_keys=False))
    lines = ["[joiners]"]
    for name in ORDER:
        if name == lost:  # nothing listens on port 1: ssh fails with connection refused -> UNREACHABLE
            lines.append("%s ansible_connection=ssh ansible_host=127.0.0.1 ansible_port=1" % name)
        else:
            lines.append("%s ansible_connection=local" % name)
    (tmp_path / "inventory").write_text("\n".join(lines) + "\n")
    env = dict(os.environ, ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_HOST_KEY_CHECKING="false",
               ANSIBLE_RETRY_FILES_ENABLED="false", ANSIBLE_NOCOLOR="1")
    return subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "inventory"), str(tmp_path / "play.yml")],
                          capture_output=True, text=True, env=env, timeout=120, check=False)


@pytest.mark.parametrize("lost", ["cp2", "cp4"])
def test_a_lost_control_plane_stops_the_joins_and_the_later_plays(tmp_path, lost):
    result = run(tmp_path, lost)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "fatal: [%s]: UNREACHABLE!" % lost in output, output
    assert "LATER PLAY RAN" not in output, output
    joined = [name for name in ORDER if "ok: [%s]" % name in output]
    assert joined == ORDER[:ORDER.index(lost)], output
    if lost != ORDER[-1]:
        assert "%s failed or became unreachable during its join" % lost in output, output
