"""Every kubeadm config vipadm renders, checked by the real kubeadm of every supported minor.

The configs come from the collection's own renderer (module_utils/_kubeadm: what the init and join
modules write) over a matrix of the modules' parameters; `kubeadm config validate` of the pinned release
of each minor must accept each one. Bad parameters are refused by vipadm itself, before any kubeadm runs.
The kubeadm binaries come from the lab's components cache (`python -m lab build --kubeadm all`, which
`make test` runs); a minor whose kubeadm is not cached is skipped with the command that builds it.
"""

from __future__ import annotations

import subprocess

import pytest

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm, _node_prep, _versions
from lab.components import Builder, load_pins, recipes

PINS = load_pins()
TOKEN = "abcdef.0123456789abcdef"
CA_HASH = "sha256:" + "0123456789abcdef" * 4
CERTIFICATE_KEY = "fedcba9876543210" * 4
ENDPOINT, ENDPOINT6 = "198.51.100.10:6443", "[2001:db8::10]:6443"

# (name, what) -> parameters of the init module; each adds one option, "everything" combines them.
INIT_CASES = {
    "minimal": {},
    "advertise address and port": {"advertise_address": "198.51.100.11", "bind_port": 6444},
    "node name and CRI socket": {"node_name": "cp1", "cri_socket": "unix:///run/containerd/containerd.sock"},
    "ignored preflight errors": {"ignore_preflight_errors": ["SystemVerification", "Swap"]},
    "networking": {"pod_subnet": "10.244.0.0/16", "service_subnet": "10.96.0.0/12"},
    "extra certificate SANs": {"cert_sans": ["api.example.internal", "198.51.100.20"]},
    "image repository": {"image_repository": "registry.example.internal/k8s"},
    "skip kube-proxy": {"skip_phases": ["addon/kube-proxy"]},
    "skip both addons": {"skip_phases": ["addon/kube-proxy", "addon/coredns"]},
    "extra args of every component": {"extra_args": {
        "api_server": {"audit-log-maxage": "30", "profiling": False},
        "controller_manager": {"bind-address": "0.0.0.0"},
        "scheduler": {"bind-address": "0.0.0.0"},
        "etcd": {"listen-metrics-urls": "http://127.0.0.1:2381"},
        "kubelet": {"node-labels": "rack=r1", "max-pods": 150},
    }},
    "kubelet config with the systemd driver": {"cgroup_driver": "systemd",
                                               "kubelet_config": {"maxPods": 150, "failSwapOn": False}},
    "kubelet config with the cgroupfs driver": {"cgroup_driver": "cgroupfs", "kubelet_config": {"serializeImagePulls": False}},
    "kube-proxy in ipvs mode": {"kube_proxy_config": {"mode": "ipvs"}},
    "kube-proxy conntrack": {"kube_proxy_config": {"conntrack": {"maxPerCore": 0}}},
    "IPv6 endpoint": {"control_plane_endpoint": ENDPOINT6, "advertise_address": "2001:db8::11",
                      "pod_subnet": "fd00:10::/56", "service_subnet": "fd00:20::/112"},
    "dual stack with an IPv4 endpoint": {"pod_subnet": "10.244.0.0/16,fd00:10::/56",
                                         "service_subnet": "10.96.0.0/12,fd00:20::/112"},
    "kubeadm's waits": {"timeouts": {"control_plane_component_health_check": "10m", "kubelet_health_check": "8m",
                                     "kubernetes_api_call": "90s", "etcd_api_call": "3m", "tls_bootstrap": "10m",
                                     "discovery": "10m"}},
    "the lab's settings": {"node_name": "cp1", "advertise_address": "198.51.100.11", "cgroup_driver": "cgroupfs",
                           "ignore_preflight_errors": ["SystemVerification"], "pod_subnet": "10.244.0.0/16",
                           "kubelet_config": {"failCgroupV1": False, "failSwapOn": False},
                           "kube_proxy_config": {"conntrack": {"maxPerCore": 0}}},
}
INIT_CASES["everything"] = {
    key: value for case in INIT_CASES.values() for key, value in case.items()
    if key not in ("control_plane_endpoint", "kube_proxy_config", "cgroup_driver", "kubelet_config")
} | {"pod_subnet": "10.244.0.0/16", "service_subnet": "10.96.0.0/12", "advertise_address": "198.51.100.11",
     "cgroup_driver": "systemd", "kubelet_config": {"maxPods": 150}, "kube_proxy_config": {"mode": "ipvs"}}

JOIN_CASES = {
    "worker": {},
    "worker with registration": {"node_name": "worker1", "cri_socket": "unix:///run/containerd/containerd.sock",
                                 "ignore_preflight_errors": ["SystemVerification"],
                                 "extra_args": {"kubelet": {"node-labels": "rack=r2"}}},
    "control plane": {"control_plane": True, "certificate_key": CERTIFICATE_KEY},
    "control plane with its address and port": {"control_plane": True, "certificate_key": CERTIFICATE_KEY,
                                                "advertise_address": "198.51.100.12", "bind_port": 6444},
    "control plane with kubeadm's waits": {"control_plane": True, "certificate_key": CERTIFICATE_KEY,
                                           "timeouts": INIT_CASES["kubeadm's waits"]["timeouts"]},
    "IPv6 control plane": {"api_endpoint": ENDPOINT6, "control_plane": True, "certificate_key": CERTIFICATE_KEY,
                           "advertise_address": "2001:db8::12"},
}

# Parameters vipadm refuses itself, with the words of its sentence; kubeadm never sees them.
BAD_INIT = {
    "endpoint without a port": ({"control_plane_endpoint": "198.51.100.10"}, "must be HOST:PORT"),
    "a cgroup driver that is not one": ({"cgroup_driver": "cgroupsv2"}, "which is not a cgroup driver"),
    "kubelet driver against the runtime's": ({"cgroup_driver": "systemd", "kubelet_config": {"cgroupDriver": "cgroupfs"}},
                                             "must use the cgroup driver of the container runtime"),
    "a timeout that is not a duration": ({"timeouts": {"discovery": "600"}}, "which is not a duration"),
}
BAD_JOIN = {
    "a token of the wrong shape": ({"token": "not-a-token"}, "is not a bootstrap token"),
    "a CA hash of the wrong shape": ({"ca_cert_hash": ["sha256:abc"]}, "ca_cert_hash must be"),
}


def init_params(version: str, case: dict) -> dict:
    return {"kubernetes_version": version, "control_plane_endpoint": ENDPOINT} | case


def join_params(version: str, case: dict) -> dict:
    return {"kubernetes_version": version, "api_endpoint": ENDPOINT, "token": TOKEN, "ca_cert_hash": [CA_HASH]} | case


def within_the_config_api(version: str, case: dict) -> dict:
    """The case without the timeouts kubeadm.k8s.io/v1beta3 has not (vipadm refuses them: see the test below)."""
    if "timeouts" not in case or _kubeadm.config_api_version(version) != _kubeadm.API_V1BETA3:
        return case
    return case | {"timeouts": {k: v for k, v in case["timeouts"].items() if k in _kubeadm.V1BETA3_TIMEOUTS}}


def rendered_configs(version: str) -> dict[str, str]:
    """name -> config text, as the init and join modules write them for this release."""
    configs = {}
    minor = int(version.split(".")[1])
    for name, case in INIT_CASES.items():
        case = within_the_config_api(version, case)
        if minor < 31 and "failCgroupV1" in case.get("kubelet_config", {}):
            # The kubelet field exists from 1.31: kubeadm 1.29/1.30 refuse it ("strict decoding error: unknown
            # field"), rightly: the user's kubelet_config must suit the kubelet it configures.
            case = case | {"kubelet_config": {k: v for k, v in case["kubelet_config"].items() if k != "failCgroupV1"}}
        if case.get("extra_args") and _kubeadm.config_api_version(version) == _kubeadm.API_V1BETA4:
            case = case | {"extra_args": case["extra_args"] | {"api_server": {"audit-log-maxage": "30",
                                                                              "tls-cipher-suites": ["A", "B"]}}}
        configs[f"init: {name}"] = _kubeadm.to_yaml_documents(_kubeadm.init_documents(init_params(version, case)))
    for name, case in JOIN_CASES.items():
        case = within_the_config_api(version, case)
        configs[f"join: {name}"] = _kubeadm.to_yaml(_kubeadm.join_document(join_params(version, case)))
    return configs


def kubeadm_of(version: str):
    result = Builder(log=lambda _: None).kubeadm(version, build=False)
    if result is None:
        pytest.skip(f"kubeadm {version} is not in the components cache: `python -m lab build --kubeadm all` builds it")
    return result


MINORS = [pin.version for pin in PINS.kubernetes.values()]


@pytest.mark.parametrize("version", MINORS)
def test_real_kubeadm_accepts_every_config_vipadm_renders(version, tmp_path):
    kubeadm = kubeadm_of(version).binary("kubeadm")
    refused = {}
    configs = rendered_configs(version)
    for number, (name, text) in enumerate(configs.items()):
        path = tmp_path / f"{number}.yaml"
        path.write_text(text)
        result = subprocess.run([str(kubeadm), "config", "validate", "--config", str(path)],
                                capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        if result.returncode != 0:
            refused[name] = (result.stderr or result.stdout).strip()[-600:] + "\n" + text
    assert not refused, f"kubeadm {version} refused {len(refused)} of {len(configs)} configs:\n" + "\n\n".join(
        f"{name}: {why}" for name, why in refused.items())
    print(f"kubeadm {version}: {len(configs)} configs valid")


@pytest.mark.parametrize("version", MINORS)
def test_images_kubeadm_asks_for_are_the_ones_node_prep_expects(version):
    listed = kubeadm_of(version).info["kubeadm_images"]
    asked = recipes.image_list_versions(listed)
    minor = int(version.split(".")[1])
    assert _node_prep.pause_image(minor) == f"registry.k8s.io/pause:{asked['pause']}", listed
    assert PINS.kubernetes_pin(version, for_nodes=False).images == {name: asked[name] for name in ("etcd", "coredns", "pause")}
    assert f"registry.k8s.io/kube-apiserver:v{version}" in listed


@pytest.mark.parametrize("name", list(BAD_INIT) + list(BAD_JOIN))
@pytest.mark.parametrize("version", MINORS)
def test_bad_parameters_are_refused_before_kubeadm(version, name):
    if name in BAD_INIT:
        case, words = BAD_INIT[name]
        render = lambda: _kubeadm.init_documents(init_params(version, case))  # noqa: E731
    else:
        case, words = BAD_JOIN[name]
        render = lambda: _kubeadm.validate_join_credentials(join_params(version, case))  # noqa: E731
    with pytest.raises(_kubeadm.KubeadmError, match=words):
        render()


@pytest.mark.parametrize("version", MINORS)
def test_repeated_flags_are_refused_where_the_config_api_cannot_hold_them(version):
    case = {"extra_args": {"api_server": {"tls-cipher-suites": ["A", "B"]}}}
    if _kubeadm.config_api_version(version) == _kubeadm.API_V1BETA3:
        with pytest.raises(_kubeadm.KubeadmError, match="repeats a flag"):
            _kubeadm.init_documents(init_params(version, case))
    else:
        text = _kubeadm.to_yaml_documents(_kubeadm.init_documents(init_params(version, case)))
        assert text.count("name: tls-cipher-suites") == 2, text


@pytest.mark.parametrize("version", MINORS)
def test_the_oldest_control_plane_each_kubeadm_deploys_is_the_one_preflight_allows(version):
    """kubeadm converts a config for its minor and the one before, and refuses older ones (its preflight, not
    observed here, also refuses a newer Kubernetes than itself); vipadm's preflight draws the same line."""
    kubeadm = kubeadm_of(version).binary("kubeadm")
    major, minor, _ = (int(part) for part in version.split("."))
    for target in (f"{major}.{minor}.0", f"{major}.{minor - 1}.0", f"{major}.{minor - 2}.0"):
        result = subprocess.run([str(kubeadm), "config", "images", "list", "--kubernetes-version", "v" + target],
                                capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        refused_by_vipadm = _versions.skew_errors("node", target, "v" + version)
        assert (result.returncode != 0) == bool(refused_by_vipadm), (target, result.stderr, refused_by_vipadm)
        if result.returncode != 0:
            assert "only supports deploying clusters with the control plane version" in result.stderr, result.stderr


@pytest.mark.parametrize("version", MINORS)
def test_timeouts_are_refused_where_the_config_api_has_no_field_for_them(version):
    case = {"timeouts": {"kubelet_health_check": "8m"}}
    if _kubeadm.config_api_version(version) == _kubeadm.API_V1BETA3:
        with pytest.raises(_kubeadm.KubeadmError, match="timeouts.kubelet_health_check needs kubeadm.k8s.io/v1beta4"):
            _kubeadm.init_documents(init_params(version, case))
    else:
        assert _kubeadm.init_documents(init_params(version, case))[0]["timeouts"] == {"kubeletHealthCheck": "8m"}
