"""The systemctl stand-in inside lab nodes: real supervision, systemd's answers, Ansible's modules."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ANSIBLE = REPO_ROOT / ".venv" / "bin" / "ansible"

pytestmark = pytest.mark.lab

# A small daemon that records each start, so restarts can be counted from outside.
DEMO_UNIT = """\
[Unit]
Description=lab demo daemon

[Service]
Environment="GREETING=hello lab" NAP=300
EnvironmentFile=-/etc/default/demo
ExecStart=/bin/sh -c 'echo "$GREETING $$" >> /var/lib/demo/starts; exec sleep ${NAP}'
Restart=always
RestartSec=10

[Install]
WantedBy=multi-user.target
"""

IDLE_UNIT = """\
[Unit]
Description=lab idle daemon

[Service]
ExecStart=/bin/sleep 300

[Install]
WantedBy=multi-user.target
"""


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def ansible(lab, node, module, args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    result = subprocess.run(
        [str(ANSIBLE), "-i", str(lab.inventory_path), node, "-m", module, "-a", args, "-o"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        env={**env, "ANSIBLE_HOME": str(lab.state_dir / "ansible-home"), "ANSIBLE_DEPRECATION_WARNINGS": "false"},
    )
    assert " | " in result.stdout, result.stdout + result.stderr
    return result.returncode, json.loads(result.stdout.split("=>", 1)[1]) if "=>" in result.stdout else {}


def test_systemctl_supervises_enabled_units_across_power_cycles(lab_factory):
    lab = lab_factory(runtime="bare", control_planes=2)
    lab.exec("cp1", ["sh", "-c", "mkdir -p /var/lib/demo && cat > /etc/systemd/system/demo.service"], input=DEMO_UNIT)
    # installed and never enabled, as a package leaves a unit it does not enable
    lab.exec("cp1", ["sh", "-c", "cat > /etc/systemd/system/idle.service"], input=IDLE_UNIT)

    # Ansible's systemd module: enable + start reports a change, the second run none
    rc, first = ansible(lab, "cp1", "ansible.builtin.systemd", "name=demo enabled=true state=started daemon_reload=true")
    assert rc == 0 and first["changed"] is True, first
    rc, second = ansible(lab, "cp1", "ansible.builtin.systemd", "name=demo enabled=true state=started")
    assert rc == 0 and second["changed"] is False, second
    assert lab.exec("cp1", ["systemctl", "is-active", "demo"]).stdout == "active\n"
    assert lab.exec("cp1", ["systemctl", "is-enabled", "demo.service"]).stdout == "enabled\n"
    # state is per node
    assert lab.exec("cp2", ["systemctl", "is-active", "demo"], check=False).returncode in (3, 5)

    def starts():
        return lab.exec("cp1", ["cat", "/var/lib/demo/starts"]).stdout.splitlines()

    assert wait_for(lambda: len(starts()) == 1)
    assert starts()[0].startswith("hello lab ")
    main_pid = lab.exec("cp1", ["systemctl", "show", "demo", "-p", "MainPID"]).stdout.strip().split("=")[1]
    assert lab.exec("cp1", ["ps", "-o", "args=", "-p", main_pid]).stdout.strip() == "sleep 300"

    # the daemon dies: it is started again (RestartSec capped at 1 s in the lab)
    lab.exec("cp1", ["kill", main_pid])
    assert wait_for(lambda: len(starts()) == 2, timeout=4)
    show = lab.exec("cp1", ["systemctl", "show", "demo"]).stdout
    assert "NRestarts=1" in show and "ActiveState=active" in show

    # stop ends the whole process group; is-active says so with rc 3
    lab.exec("cp1", ["systemctl", "stop", "demo"])
    result = lab.exec("cp1", ["systemctl", "is-active", "demo"], check=False)
    assert (result.stdout, result.returncode) == ("inactive\n", 3)
    assert "sleep" not in lab.exec("cp1", ["ps", "-e", "-o", "comm="]).stdout

    # power cycle: the enabled unit comes back, the disabled one does not
    lab.exec("cp1", ["systemctl", "start", "demo"])
    lab.stop("cp1")
    lab.start("cp1")
    assert lab.exec("cp1", ["systemctl", "is-active", "demo"]).stdout == "active\n"
    assert wait_for(lambda: len(starts()) == 4)
    result = lab.exec("cp1", ["systemctl", "is-active", "idle"], check=False)
    assert (result.stdout, result.returncode) == ("inactive\n", 3)
    result = lab.exec("cp1", ["systemctl", "is-enabled", "idle"], check=False)
    assert (result.stdout, result.returncode) == ("disabled\n", 1)
    idle = lab.exec("cp1", ["systemctl", "cat", "idle"], check=False)
    assert idle.returncode == 1  # not a verb the stand-in knows: it says so instead of pretending
    assert lab.node_file("cp1", "/etc/systemd/system/idle.service").read_text() == IDLE_UNIT

    # disable --now: not active, and not started at the next power on
    lab.exec("cp1", ["systemctl", "disable", "--now", "demo"])
    lab.stop("cp1")
    lab.start("cp1")
    assert lab.exec("cp1", ["systemctl", "is-active", "demo"], check=False).stdout == "inactive\n"
    assert len(starts()) == 4


def test_systemctl_answers_like_systemd_for_unknown_units(lab_factory):
    lab = lab_factory(runtime="bare", control_planes=1)
    result = lab.exec("cp1", ["systemctl", "start", "nosuch"], check=False)
    assert (result.returncode, result.stderr) == (5, "Failed to start nosuch.service: Unit nosuch.service not found.\n")
    result = lab.exec("cp1", ["systemctl", "show", "nosuch", "-p", "LoadState"], check=False)
    assert (result.returncode, result.stdout) == (0, "LoadState=not-found\n")
    # Ansible's systemd module then fails the way it does on a real host
    rc, failed = ansible(lab, "cp1", "ansible.builtin.systemd", "name=nosuch state=started")
    assert rc != 0 and "Could not find the requested service nosuch" in failed["msg"]
    # host units stay off: a fresh node has nothing enabled (etcd.service etc. are the host's)
    assert lab.exec("cp1", ["sh", "-c", "ls /etc/systemd/system/multi-user.target.wants | wc -l"]).stdout == "0\n"
    assert lab.exec("cp1", ["test", "-d", "/run/systemd/system"]).returncode == 0
