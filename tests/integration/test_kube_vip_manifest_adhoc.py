# -*- coding: utf-8 -*-
"""The issue's acceptance command: an ad-hoc run from the repository root writes the manifest,
and a second run reports no change. Cost: about 4 s."""

import os
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.dirname(sys.executable)
REFERENCE = os.path.join(REPO, "tests", "fixtures", "kube-vip", "v0.8.9", "arp-controlplane-services.stdout")


def adhoc(dest):
    args = ("version=v0.8.9 address=192.168.0.40 interface=eth0 arp=true controlplane=true services=true "
            "leader_election=true dest=%s" % dest)
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""), ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_CONFIG", None)  # the repository's ansible.cfg is what makes vipadm.kubeadm resolve
    return subprocess.run(["ansible", "localhost", "-m", "vipadm.kubeadm.kube_vip_manifest", "-a", args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_adhoc_run_writes_the_manifest_then_changes_nothing(tmp_path):
    dest = tmp_path / "kube-vip.yaml"
    first = adhoc(dest)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "CHANGED" in first.stdout
    with open(REFERENCE) as handle:
        assert dest.read_text() == handle.read()
    second = adhoc(dest)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "SUCCESS" in second.stdout and '"changed": false' in second.stdout
