# -*- coding: utf-8 -*-
"""node_prep in bundle mode, its own task files run by ansible-playbook on this machine (local connection).

The refusals (tasks/plan.yml): a bundle the controller refuses fails every host, a node the bundle cannot serve
fails and the other nodes change nothing. The installation (tasks/bundle_binaries.yml, bundle_images.yml): check
mode reports and writes nothing, a run copies the binaries, writes the kubelet unit and imports every image, a
re-run changes nothing, an image containerd lost is imported again alone. Everything the role writes goes to
temporary directories (node_prep_bundle_bin_dir, _unit_dir, _cache_dir); `ctr` and `systemctl` are stand-ins on
PATH that log their calls (tests/unit/fixtures/bundle_kit.py). About 25 s."""

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "unit", "fixtures"))

import bundle_kit as kit  # noqa: E402

ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)

INSTALL = ["bundle_binaries", "bundle_images"]
IMAGES = ["registry.k8s.io/pause:3.10.2", kit.KUBE_VIP]
ARCHIVES = ["pause-3.10.2.tar", "kube-vip-v1.2.3.tar"]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the role's files are owned by root: run as root")


def playbook(tmp_path, hosts, tasks_from, *extra, check=False, play_vars=None):
    """Run the role's ``tasks_from`` files on local hosts; returns (output, {host: (ok, changed, failed)})."""
    inventory = {"all": {"hosts": {name: dict({"ansible_connection": "local",
                                               "ansible_python_interpreter": sys.executable}, **variables)
                                   for name, variables in hosts.items()}}}
    play = {"name": "bundle", "hosts": "all", "gather_facts": False,
            "environment": {"PATH": "%s:%s" % (tmp_path / "tools", os.environ["PATH"])},
            "vars": play_vars or {},
            "tasks": [{"ansible.builtin.include_role": {"name": "vipadm.kubeadm.node_prep", "tasks_from": name}}
                      for name in tasks_from]}
    (tmp_path / "play.yml").write_text(yaml.safe_dump([play], sort_keys=False))
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    argv = [ANSIBLE_PLAYBOOK, "-i", str(tmp_path / "inventory.yml"), str(tmp_path / "play.yml")] + list(extra)
    if check:
        argv.append("--check")
    result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO, timeout=180, check=False)
    output = result.stdout + result.stderr
    recap = {host: (int(ok), int(changed), int(failed)) for host, ok, changed, _unreachable, failed in RECAP.findall(output)}
    return output, recap


@pytest.fixture
def node(tmp_path):
    """A bundle on the 'controller', a fake ctr and systemctl, and the node's directories, all under tmp_path."""
    bundle = tmp_path / "bundle"
    manifest = kit.write_bundle(bundle)
    tools = tmp_path / "tools"
    _ctr, images, calls, down = (pathlib.Path(path) for path in kit.fake_ctr(tools))
    systemctl_calls = tmp_path / "systemctl-calls"
    (tools / "systemctl").write_text("#!/bin/sh\necho \"$@\" >> %s\n" % systemctl_calls)
    (tools / "systemctl").chmod(0o755)
    # The installation tests carry two images (each archive is one copy task, about a second).
    small = dict(manifest, files=[entry for entry in manifest["files"] if entry["kind"] == "binary"
                                  or os.path.basename(entry["path"]) in ARCHIVES])
    variables = {
        "node_prep_source": "bundle",
        "node_prep_bundle_dir": str(bundle),
        "node_prep_bundle_bin_dir": str(tmp_path / "node" / "usr-local-bin"),
        "node_prep_bundle_unit_dir": str(tmp_path / "node" / "systemd"),
        "node_prep_bundle_cache_dir": str(tmp_path / "node" / "cache"),
        # what tasks/plan.yml registers
        "__node_prep_bundle": {"manifest": small},
        "__node_prep_plan": {"package_manager": "apt"},
    }
    return {"vars": variables, "manifest": manifest, "ctr_images": images, "ctr_calls": calls, "ctr_down": down,
            "systemctl_calls": systemctl_calls, "root": tmp_path / "node"}


def task_result(output, task):
    """The first status word (ok, changed, skipping, fatal) printed under the task named ``task``."""
    for section in output.split("\nTASK [")[1:]:
        if section.startswith("vipadm.kubeadm.node_prep : %s]" % task):
            statuses = re.findall(r"^(ok|changed|skipping|fatal):", section, re.M)
            return statuses[0] if statuses else None
    return None


def read(path):
    return path.read_text() if path.exists() else ""




def test_check_mode_reports_a_run_installs_a_re_run_changes_nothing(tmp_path, node):
    hosts = {"node1": node["vars"]}
    # check mode on a node without any of it: changes reported, nothing written, nothing imported
    output, recap = playbook(tmp_path, hosts, INSTALL, "--diff", check=True)
    assert recap["node1"][2] == 0 and recap["node1"][1] >= 5, output
    assert not node["root"].exists(), output
    assert " import " not in read(node["ctr_calls"]) and read(node["systemctl_calls"]) == "", output
    assert task_result(output, "Import the images containerd lacks") == "changed", output
    assert task_result(output, "Install the kubelet unit and kubeadm's drop-in") == "changed", output

    output, recap = playbook(tmp_path, hosts, INSTALL)
    assert recap["node1"][2] == 0, output
    bin_dir = node["root"] / "usr-local-bin"
    for name in kit.BINARIES:
        assert (bin_dir / name).read_bytes() == kit.bundle_files()["bin/" + name]
        assert (bin_dir / name).stat().st_mode & 0o7777 == 0o755
    unit = (node["root"] / "systemd" / "kubelet.service").read_text()
    assert "\nExecStart=%s/kubelet\n" % bin_dir in unit
    dropin = (node["root"] / "systemd" / "kubelet.service.d" / "10-kubeadm.conf").read_text()
    assert "EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\n" in dropin
    assert "EnvironmentFile=-/etc/default/kubelet\n" in dropin
    assert "\nExecStart=\nExecStart=%s/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS " \
           "$KUBELET_EXTRA_ARGS\n" % bin_dir in dropin
    assert read(node["systemctl_calls"]) == "daemon-reload\n"
    assert sorted(read(node["ctr_images"]).split()) == sorted(IMAGES)
    assert read(node["ctr_calls"]).count(" import ") == len(IMAGES)
    assert sorted(os.listdir(str(node["root"] / "cache"))) == sorted(ARCHIVES)

    calls_before = read(node["ctr_calls"])
    output, recap = playbook(tmp_path, hosts, INSTALL)
    assert recap["node1"][1:] == (0, 0), output
    assert task_result(output, "Import the images containerd lacks") == "skipping", output
    assert read(node["systemctl_calls"]) == "daemon-reload\n"
    assert " import " not in read(node["ctr_calls"])[len(calls_before):]
    output, recap = playbook(tmp_path, hosts, INSTALL, check=True)
    assert recap["node1"][1:] == (0, 0), output


def test_an_image_containerd_lost_is_imported_again_alone_and_a_changed_binary_is_replaced(tmp_path, node):
    hosts = {"node1": node["vars"]}
    playbook(tmp_path, hosts, INSTALL)
    images = [ref for ref in read(node["ctr_images"]).split() if "kube-vip" not in ref]
    node["ctr_images"].write_text("\n".join(images) + "\n")  # the kubelet's image garbage collection
    kubectl = node["root"] / "usr-local-bin" / "kubectl"
    kubectl.write_text("#!/bin/sh\necho another kubectl\n")
    calls_before = read(node["ctr_calls"])
    output, recap = playbook(tmp_path, hosts, INSTALL)
    assert recap["node1"][2] == 0 and recap["node1"][1] == 2, output  # kubectl copied, kube-vip imported
    imports = [line for line in read(node["ctr_calls"])[len(calls_before):].splitlines() if " import " in line]
    assert imports == ["-n k8s.io images import %s/cache/kube-vip-v1.2.3.tar" % node["root"]]
    assert kubectl.read_bytes() == kit.bundle_files()["bin/kubectl"]


def test_the_upgrade_installs_kubeadm_first_and_the_kubelet_and_kubectl_after(tmp_path, node):
    """node_prep_kubernetes_components: the upgrade's two installs touch only the binaries they name."""
    bin_dir = node["root"] / "usr-local-bin"
    output, recap = playbook(tmp_path, {"node1": dict(node["vars"], node_prep_kubernetes_components=["kubeadm"])},
                             ["bundle_binaries"])
    assert recap["node1"][2] == 0, output
    assert sorted(os.listdir(str(bin_dir))) == ["kubeadm"], output
    output, recap = playbook(tmp_path, {"node1": dict(node["vars"],
                                                      node_prep_kubernetes_components=["kubelet", "kubectl"])},
                             ["bundle_binaries"])
    assert recap["node1"][2] == 0, output
    assert sorted(os.listdir(str(bin_dir))) == sorted(kit.BINARIES)
    for name in kit.BINARIES:
        assert (bin_dir / name).read_bytes() == kit.bundle_files()["bin/" + name]


def test_a_dnf_node_gets_the_drop_in_of_the_rpm_packages(tmp_path, node):
    variables = dict(node["vars"], __node_prep_plan={"package_manager": "dnf"})
    output, recap = playbook(tmp_path, {"node1": variables}, ["bundle_binaries"])
    assert recap["node1"][2] == 0, output
    dropin = (node["root"] / "systemd" / "kubelet.service.d" / "10-kubeadm.conf").read_text()
    assert "EnvironmentFile=-/etc/sysconfig/kubelet\n" in dropin and "/etc/default/kubelet" not in dropin


def test_images_are_not_imported_into_a_containerd_that_does_not_answer(tmp_path, node):
    node["ctr_down"].write_text("")
    output, recap = playbook(tmp_path, {"node1": node["vars"]}, INSTALL)
    assert recap["node1"][2] == 1, output
    assert "containerd did not list its images (ctr -n k8s.io images ls -q: ctr: failed to dial" in output, output
    assert read(node["ctr_images"]) == ""


# ---- tasks/plan.yml: refusals before any change ------------------------------------------------------------


def plan_hosts(node, **per_host):
    base = {name: value for name, value in node["vars"].items() if not name.startswith("__")}
    base.update(vipadm_kubernetes_version=kit.VERSION, node_prep_install_packages=False)
    return {name: dict(base, **changes) for name, changes in per_host.items()}


def test_a_good_bundle_passes_the_plan_on_every_node(tmp_path, node):
    output, recap = playbook(tmp_path, plan_hosts(node, node1={}, node2={}), ["plan"], check=True)
    assert {host: counts[1:] for host, counts in recap.items()} == {"node1": (0, 0), "node2": (0, 0)}, output
    assert "ok: [node1 -> localhost]" in output and "ok: [node2]" in output, output


def test_packages_mode_neither_reads_a_bundle_nor_checks_containerd(tmp_path, node):
    hosts = plan_hosts(node, node1={"node_prep_source": "packages", "node_prep_bundle_dir": ""})
    output, recap = playbook(tmp_path, hosts, ["plan"], check=True)
    assert recap["node1"][1:] == (0, 0), output
    assert task_result(output, "Check the bundle on the controller (bundle mode)") == "skipping", output


def test_a_bundle_the_controller_refuses_stops_every_node(tmp_path, node):
    (node["vars"] and (tmp_path / "bundle" / "images" / "kube-vip-v1.2.3.tar").write_bytes(b"truncated"))
    output, recap = playbook(tmp_path, plan_hosts(node, node1={}, node2={}), ["plan"])
    # The run_once task fails on the host it ran for, and Ansible ends the play (and the playbook) for all.
    assert recap["node1"][2] == 1 and "fatal: [node1 -> localhost]: FAILED!" in output, output
    assert "images/kube-vip-v1.2.3.tar does not match its sha256 in bundle.json" in output, output
    assert "Decide versions" not in output, output  # no node got further


def test_a_missing_bundle_directory_is_refused_with_the_variable_to_set(tmp_path, node):
    output, recap = playbook(tmp_path, plan_hosts(node, node1={"node_prep_bundle_dir": ""}), ["plan"])
    assert recap["node1"][2] == 1, output
    assert "No bundle directory was given: set node_prep_bundle_dir to the directory on the controller" in output


def test_a_node_the_bundle_cannot_serve_stops_the_others_before_any_change(tmp_path, node):
    hosts = plan_hosts(node, node1={}, node2={"node_prep_pause_image": "registry.k8s.io/pause:3.9"})
    output, recap = playbook(tmp_path, hosts, ["plan"])
    assert {host: counts[2] for host, counts in recap.items()} == {"node1": 1, "node2": 1}, output
    assert "The bundle holds no image registry.k8s.io/pause:3.9, the pause image containerd's configuration names on " \
           "this node" in output, output
    assert "node_prep changed nothing on this node because it refused node2" in output, output


def test_the_bundle_mode_sequence_of_main(tmp_path):
    """main.yml: the plan first; no repository nor Kubernetes package in bundle mode; binaries before the services
    (the kubelet unit must exist to be enabled), images after them (ctr needs a running containerd)."""
    with open(os.path.join(REPO, "roles", "node_prep", "tasks", "main.yml")) as handle:
        tasks = yaml.safe_load(handle)
    files = [task.get("ansible.builtin.import_tasks") or task.get("ansible.builtin.include_tasks") for task in tasks]
    assert files[0] == "plan.yml"
    order = {name: files.index(name) for name in files}
    assert order["bundle_binaries.yml"] < order["services.yml"] < order["bundle_images.yml"]
    assert order["containerd.yml"] < order["bundle_binaries.yml"]
    for task in tasks:
        name = task.get("ansible.builtin.include_tasks")
        when = json.dumps(task.get("when", []))
        if name in ("packages_apt.yml", "packages_dnf.yml"):
            assert "node_prep_source == 'packages'" in when
        if name and name.startswith("bundle_"):
            assert "node_prep_source == 'bundle'" in when
