# -*- coding: utf-8 -*-
"""The node_prep role's own data: every variable documented once, and its templates render to files
containerd, crictl, apt, dnf, sysctl and modules-load accept."""

import configparser
import json
import os
import re
import subprocess
import sys
import tomllib

import jinja2
import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ROLE = os.path.join(REPO, "roles", "node_prep")
sys.path.insert(0, os.path.join(REPO, ".collections"))

from ansible_collections.vipadm.kubeadm.plugins.module_utils._node_prep import containerd_1_support, plan  # noqa: E402

DEBIAN_12 = "ID=debian\nVERSION_ID=12\n"
ROCKY_9 = 'ID="rocky"\nVERSION_ID="9.4"\n'
# A role variable: node_prep_* not preceded by a word character, a dot (the module name) or "__" (internal).
ROLE_VARIABLE = re.compile(r"(?<![\w.])node_prep_[a-z0-9_]+")


def load_yaml(*parts):
    with open(os.path.join(ROLE, *parts)) as handle:
        return yaml.safe_load(handle)


def role_files():
    for top, _dirs, files in os.walk(ROLE):
        for name in files:
            yield os.path.join(top, name)


def specs():
    return load_yaml("meta", "argument_specs.yml")["argument_specs"]["main"]["options"]


def test_every_role_variable_used_is_documented_in_argument_specs():
    used = set()
    for path in role_files():
        if path.endswith("argument_specs.yml"):
            continue
        with open(path) as handle:
            used.update(ROLE_VARIABLE.findall(handle.read()))
    documented = set(specs())
    assert used, "the scan found no variable: the pattern is broken"
    assert used - documented == set()
    # and nothing documented is dead
    assert {name for name in documented if name.startswith("node_prep_")} - used == set()


def test_every_option_has_a_default_or_is_required_and_literal_defaults_agree():
    defaults = load_yaml("defaults", "main.yml")
    for name, spec in specs().items():
        assert spec.get("description"), name
        if spec.get("required"):
            assert name not in defaults, name
            continue
        assert name in defaults, "%s is documented but has no default" % name
        if "default" in spec:
            assert spec["default"] == defaults[name], name
    assert specs()["vipadm_kubernetes_version"]["required"] is True


def render(template, **variables):
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.join(ROLE, "templates")),
        trim_blocks=True,  # as Ansible's template module
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["to_json"] = json.dumps
    environment.filters["bool"] = lambda value: value if isinstance(value, bool) else str(value).lower() in (
        "true", "yes", "on", "1")  # as Ansible's bool filter, for the values used here
    return environment.get_template(template).render(**variables)


def containerd_config(node_plan, **variables):
    """The containerd configuration the role writes, with the role's defaults unless given."""
    defaults = load_yaml("defaults", "main.yml")
    names = ("vipadm_cgroup_driver", "node_prep_containerd_restrict_oom_score_adj")
    values = dict({name: defaults[name] for name in names}, **variables)
    return tomllib.loads(render("containerd-config.toml.j2", __node_prep_plan=node_plan, **values))


@pytest.mark.parametrize("version, pause", [("1.29.1", "registry.k8s.io/pause:3.9"), ("1.36.0", "registry.k8s.io/pause:3.10.2")])
def test_containerd_configuration_uses_systemd_cgroups_the_pause_image_and_certs_d(version, pause):
    config = containerd_config(plan(version, DEBIAN_12))
    assert config["version"] == 2
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == pause
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["runtime_type"] == "io.containerd.runc.v2"
    assert runc["options"]["SystemdCgroup"] is True
    assert cri["containerd"]["default_runtime_name"] == "runc"
    assert cri["registry"]["config_path"] == "/etc/containerd/certs.d"
    # containerd's own defaults, written out
    assert cri["restrict_oom_score_adj"] is False
    assert cri["cni"] == {"bin_dir": "/opt/cni/bin"}


def test_a_host_without_systemd_or_cap_sys_resource_gets_cgroupfs_restricted_oom_scores_and_its_cni_directory():
    config = containerd_config(
        plan("1.36.3", DEBIAN_12, cni_bin_dir_override="/usr/lib/cni"),
        vipadm_cgroup_driver="cgroupfs",
        node_prep_containerd_restrict_oom_score_adj="true",  # as given with -e
    )
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    assert cri["restrict_oom_score_adj"] is True
    assert cri["cni"]["bin_dir"] == "/usr/lib/cni"


def test_the_cgroup_driver_is_the_cluster_wide_variable_the_control_plane_role_declares_too():
    """One concept, one name: vipadm_cgroup_driver has the same choices and default in both roles."""
    with open(os.path.join(REPO, "roles", "control_plane", "meta", "argument_specs.yml")) as handle:
        control_plane = yaml.safe_load(handle)["argument_specs"]["init"]["options"]["vipadm_cgroup_driver"]
    with open(os.path.join(REPO, "roles", "control_plane", "defaults", "main.yml")) as handle:
        control_plane_default = yaml.safe_load(handle)["vipadm_cgroup_driver"]
    node_prep = specs()["vipadm_cgroup_driver"]
    assert node_prep["choices"] == control_plane["choices"] == ["systemd", "cgroupfs"]
    assert node_prep["default"] == control_plane["default"] == control_plane_default == "systemd"


def test_registry_mirror_hosts_toml_lists_mirrors_in_order_and_keeps_the_marker():
    text = render(
        "hosts.toml.j2",
        item={"key": "registry.k8s.io", "value": ["https://mirror-a.example:5000", "http://198.51.100.1:5000"]},
    )
    assert text.startswith("# Managed by vipadm.kubeadm.node_prep")  # what the cleanup task looks for
    hosts = tomllib.loads(text)
    assert hosts["server"] == "https://registry.k8s.io"
    assert list(hosts["host"]) == ["https://mirror-a.example:5000", "http://198.51.100.1:5000"]
    assert all(entry["capabilities"] == ["pull", "resolve"] for entry in hosts["host"].values())
    docker = tomllib.loads(render("hosts.toml.j2", item={"key": "docker.io", "value": ["https://m.example"]}))
    assert docker["server"] == "https://registry-1.docker.io"


def test_crictl_points_at_the_containerd_socket():
    config = yaml.safe_load(render("crictl.yaml.j2"))
    assert config["runtime-endpoint"] == config["image-endpoint"] == "unix:///run/containerd/containerd.sock"


def test_sysctl_and_modules_files_hold_one_setting_per_line():
    defaults = load_yaml("defaults", "main.yml")
    sysctl = render("sysctl.conf.j2", node_prep_sysctl=defaults["node_prep_sysctl"])
    settings = [line for line in sysctl.splitlines() if line and not line.startswith("#")]
    assert settings == [
        "net.bridge.bridge-nf-call-ip6tables = 1",
        "net.bridge.bridge-nf-call-iptables = 1",
        "net.ipv4.ip_forward = 1",
    ]
    modules = render("modules-load.conf.j2", node_prep_kernel_modules=defaults["node_prep_kernel_modules"])
    assert [line for line in modules.splitlines() if line and not line.startswith("#")] == ["overlay", "br_netfilter"]


def test_apt_sources_are_signed_by_the_downloaded_keys():
    node_plan = plan("1.36.2", DEBIAN_12)
    kubernetes = render("kubernetes.list.j2", __node_prep_plan=node_plan).splitlines()[-1]
    assert kubernetes == (
        "deb [signed-by=/etc/apt/keyrings/kubernetes.asc] https://pkgs.k8s.io/core:/stable:/v1.36/deb/ /"
    )
    docker = render("docker.list.j2", __node_prep_plan=node_plan).splitlines()[-1]
    assert docker == "deb [signed-by=/etc/apt/keyrings/docker.asc] https://download.docker.com/linux/debian bookworm stable"


def test_dnf_repositories_check_signatures_and_exclude_the_held_packages():
    node_plan = plan("1.31.3", ROCKY_9)
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(render("kubernetes.repo.j2", __node_prep_plan=node_plan))
    parser.read_string(render("docker.repo.j2", __node_prep_plan=node_plan))
    kubernetes = parser["kubernetes"]
    assert kubernetes["baseurl"] == "https://pkgs.k8s.io/core:/stable:/v1.31/rpm/"
    assert kubernetes["gpgcheck"] == "1"
    assert kubernetes["gpgkey"] == "https://pkgs.k8s.io/core:/stable:/v1.31/rpm/repodata/repomd.xml.key"
    assert set(node_plan["held_packages"]) <= set(kubernetes["exclude"].split())
    assert parser["docker-containerd"]["baseurl"] == "https://download.docker.com/linux/centos/$releasever/$basearch/stable"
    assert parser["docker-containerd"]["gpgcheck"] == "1"


# `containerd --version` as the packages print it.
CONTAINERD_DEBIAN = "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3"
CONTAINERD_DOCKER_1 = "containerd containerd.io 1.7.27 05044ec0a9a75232cad458027ca83437aae3f4da"
CONTAINERD_2 = "containerd github.com/containerd/containerd/v2 v2.1.4 75cb2b7193e4e490e9fbdc236c0e811ccaba3376"
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def plan_for_minor(minor):
    """The plan of a 1.36 node with another minor written in (node_prep_plan refuses minors above 1.36 today)."""
    return dict(plan("1.36.3", DEBIAN_12), kubernetes_minor="1.%d" % minor, containerd_1_support=containerd_1_support(minor))


def test_the_installed_containerd_1_is_refused_from_kubernetes_1_38_and_mentioned_for_1_36_and_1_37(tmp_path):
    """The role's own task file, run by ansible-playbook on this machine (local connection) with a
    `containerd` on PATH that prints a given version; it only reads the version. About 3 s."""
    hosts = {
        "k136_debian_1_6": (plan_for_minor(36), CONTAINERD_DEBIAN),
        "k137_docker_1_7": (plan_for_minor(37), CONTAINERD_DOCKER_1),
        "k138_docker_1_7": (plan_for_minor(38), CONTAINERD_DOCKER_1),
        "k138_containerd_2": (plan_for_minor(38), CONTAINERD_2),
        "k138_no_containerd": (plan_for_minor(38), None),
    }
    inventory = {"all": {"hosts": {}}}
    for name, (node_plan, version) in hosts.items():
        bin_dir = tmp_path / name
        bin_dir.mkdir()
        if version:
            (bin_dir / "containerd").write_text("#!/bin/sh\necho '%s'\n" % version)
            (bin_dir / "containerd").chmod(0o755)
        inventory["all"]["hosts"][name] = {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable,
            "__node_prep_plan": node_plan, "fake_path": str(bin_dir),
        }
    play = {"name": "containerd version", "hosts": "all", "gather_facts": False,
            "environment": {"PATH": "{{ fake_path }}"},
            "tasks": [{"ansible.builtin.include_role": {"name": "vipadm.kubeadm.node_prep",
                                                        "tasks_from": "containerd_version"}}]}
    (tmp_path / "play.yml").write_text(yaml.safe_dump([play], sort_keys=False))
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(inventory))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    result = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", str(tmp_path / "inventory.yml"),
         str(tmp_path / "play.yml")],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120, check=False,
    )
    output = result.stdout + result.stderr
    failed = {host: int(count) for host, _ok, _changed, _unreachable, count in RECAP.findall(output)}
    assert failed == {"k136_debian_1_6": 0, "k137_docker_1_7": 0, "k138_docker_1_7": 1, "k138_containerd_2": 0,
                      "k138_no_containerd": 0}, output
    assert (
        'Kubernetes 1.38 needs containerd 2, but this node has "%s": set node_prep_containerd_source to docker '
        "(or install containerd 2 yourself), then run again." % CONTAINERD_DOCKER_1
    ) in output, output
    for host, minor, version in (("k136_debian_1_6", "1.36", CONTAINERD_DEBIAN), ("k137_docker_1_7", "1.37", CONTAINERD_DOCKER_1)):
        assert "ok: [%s] => " % host in output, output
        assert (
            'containerd \\"%s\\" with Kubernetes %s: the kubelet warns that containerd 1.x lacks the CRI RuntimeConfig '
            "call and uses its own cgroupDriver instead, which the control_plane role sets from vipadm_cgroup_driver "
            "(systemd)" % (version, minor)
        ) in output, output
    assert "ok: [k138_containerd_2] => " not in output and "ok: [k138_no_containerd] => " not in output, output


def test_the_kube_vip_settings_bundle_mode_checks_are_the_kube_vip_role_s_own():
    """One concept, one name: kube_vip_version and kube_vip_image have the kube_vip role's defaults here too."""
    with open(os.path.join(REPO, "roles", "kube_vip", "defaults", "main.yml")) as handle:
        kube_vip = yaml.safe_load(handle)
    defaults = load_yaml("defaults", "main.yml")
    for name in ("kube_vip_version", "kube_vip_image"):
        assert defaults[name] == kube_vip[name] == specs()[name]["default"], name


def test_the_kubelet_unit_of_bundle_mode_is_the_one_the_packages_install():
    """kubelet.service and 10-kubeadm.conf as the kubelet and kubeadm packages ship them (krel's templates), with
    the bundle's bin directory instead of /usr/bin; the environment file of apt or dnf systems."""
    unit = render("kubelet.service.j2", node_prep_bundle_bin_dir="/usr/local/bin")
    body = [line for line in unit.splitlines() if line and not line.startswith("#")]
    assert body == ["[Unit]", "Description=kubelet: The Kubernetes Node Agent", "Documentation=https://kubernetes.io/docs/",
                    "Wants=network-online.target", "After=network-online.target", "[Service]",
                    "ExecStart=/usr/local/bin/kubelet", "Restart=always", "StartLimitInterval=0", "RestartSec=10",
                    "[Install]", "WantedBy=multi-user.target"]
    for manager, environment in (("apt", "/etc/default/kubelet"), ("dnf", "/etc/sysconfig/kubelet")):
        dropin = render("10-kubeadm.conf.j2", node_prep_bundle_bin_dir="/opt/k8s/bin",
                        __node_prep_plan={"package_manager": manager})
        body = [line for line in dropin.splitlines() if line and not line.startswith("#")]
        assert body == [
            "[Service]",
            'Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf '
            '--kubeconfig=/etc/kubernetes/kubelet.conf"',
            'Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"',
            "EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env",
            "EnvironmentFile=-" + environment,
            "ExecStart=",
            "ExecStart=/opt/k8s/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS "
            "$KUBELET_EXTRA_ARGS",
        ]
