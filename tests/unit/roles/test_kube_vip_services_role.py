# -*- coding: utf-8 -*-
"""The kube_vip role turns on kube-vip's services mode: kube_vip_services and kube_vip_services_election become
svc_enable, svc_leasename and svc_election in the manifest, in the place kube-vip's generator puts them; off
(the default), the manifest has none of them. A second run changes nothing; --check on a new setting reports
the change and writes nothing. Real ansible-playbook on this machine (local connection); about 6 s."""

import os
import re
import subprocess
import sys

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
RECAP = re.compile(r"^(\S+)\s*:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def play(tmp_path, hosts, *options):
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {"control_plane": {
        "hosts": {name: dict(local, kube_vip_manifest_dest=str(tmp_path / name / "kube-vip.yaml"), **settings)
                  for name, settings in hosts.items()},
        "vars": {"kube_vip_address": "198.51.100.254", "kube_vip_interface": "eth0", "kube_vip_version": "v1.2.3"}}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump([{
        "name": "kube-vip", "hosts": "control_plane", "gather_facts": False,
        "roles": [{"role": "vipadm.kubeadm.kube_vip"}]}], sort_keys=False))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    result = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml"),
                             *options], capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return {m.group(1): int(m.group(3)) for m in RECAP.finditer(result.stdout)}, output


def env_names(tmp_path, name):
    pod = yaml.safe_load((tmp_path / name / "kube-vip.yaml").read_text())
    return [(e["name"], e.get("value")) for e in pod["spec"]["containers"][0]["env"]]


def test_services_mode_and_its_election_reach_the_manifest_and_a_rerun_changes_nothing(tmp_path):
    hosts = {
        "cp_default": {},
        "cp_services": {"kube_vip_services": True},
        "cp_election": {"kube_vip_services": True, "kube_vip_services_election": True,
                        "kube_vip_services_addresses": ["198.51.100.200-198.51.100.210"]},
    }
    changed, output = play(tmp_path, hosts)
    assert changed == {"cp_default": 1, "cp_services": 1, "cp_election": 1}, output

    default = [name for name, _ in env_names(tmp_path, "cp_default")]
    assert not [n for n in default if n.startswith("svc_")], default
    services = env_names(tmp_path, "cp_services")
    election = env_names(tmp_path, "cp_election")
    assert ("svc_enable", "true") in services and ("svc_leasename", "plndr-svcs-lock") in services
    assert "svc_election" not in [n for n, _ in services], services
    # kube-vip v1.2.3's order: the control plane block, then the services block, then leader election
    names = [n for n, _ in election]
    assert names[names.index("cp_namespace") + 1:names.index("vip_leaderelection")] == [
        "svc_enable", "svc_leasename", "svc_election"], names
    assert ("svc_election", "true") in election
    # Only the services block differs from the control-plane-only manifest.
    assert [n for n in names if not n.startswith("svc_")] == default

    changed, output = play(tmp_path, hosts)
    assert changed == {"cp_default": 0, "cp_services": 0, "cp_election": 0}, output

    before = (tmp_path / "cp_default" / "kube-vip.yaml").read_text()
    hosts["cp_default"] = {"kube_vip_services": True, "kube_vip_services_election": True}
    changed, output = play(tmp_path, hosts, "--check", "--diff")
    assert changed == {"cp_default": 1, "cp_services": 0, "cp_election": 0}, output
    assert "+    - name: svc_election" in output, output
    assert (tmp_path / "cp_default" / "kube-vip.yaml").read_text() == before


def test_a_services_election_that_is_not_a_boolean_stops_at_the_argument_validation(tmp_path):
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = {"control_plane": {"hosts": {"cp1": dict(
        local, kube_vip_manifest_dest=str(tmp_path / "kube-vip.yaml"), kube_vip_address="198.51.100.254",
        kube_vip_interface="eth0", kube_vip_services=True, kube_vip_services_election="sometimes")}}}
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp_path / "play.yml").write_text(yaml.safe_dump([{
        "name": "kube-vip", "hosts": "control_plane", "gather_facts": False,
        "roles": [{"role": "vipadm.kubeadm.kube_vip"}]}], sort_keys=False))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    result = subprocess.run([ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml")],
                            capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "kube_vip_services_election" in output and "bool" in output, output
    assert not (tmp_path / "kube-vip.yaml").exists()
