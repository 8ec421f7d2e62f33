# -*- coding: utf-8 -*-
"""The node_prep role's own data: every variable documented once, and its templates render to files
containerd, crictl, apt, dnf, sysctl and modules-load accept."""

import configparser
import json
import os
import re
import sys
import tomllib

import jinja2
import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
ROLE = os.path.join(REPO, "roles", "node_prep")
sys.path.insert(0, os.path.join(REPO, ".collections"))

from ansible_collections.vipadm.kubeadm.plugins.module_utils._node_prep import plan  # noqa: E402

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
    return environment.get_template(template).render(**variables)


@pytest.mark.parametrize("version, pause", [("1.29.1", "registry.k8s.io/pause:3.9"), ("1.36.0", "registry.k8s.io/pause:3.10.2")])
def test_containerd_configuration_uses_systemd_cgroups_the_pause_image_and_certs_d(version, pause):
    text = render("containerd-config.toml.j2", __node_prep_plan=plan(version, DEBIAN_12))
    config = tomllib.loads(text)
    assert config["version"] == 2
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == pause
    runc = cri["containerd"]["runtimes"]["runc"]
    assert runc["runtime_type"] == "io.containerd.runc.v2"
    assert runc["options"]["SystemdCgroup"] is True
    assert cri["containerd"]["default_runtime_name"] == "runc"
    assert cri["registry"]["config_path"] == "/etc/containerd/certs.d"


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
