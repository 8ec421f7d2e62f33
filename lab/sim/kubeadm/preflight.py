"""kubeadm's preflight checks: names, texts, order, warnings and ``--ignore-preflight-errors``."""

import os

from lab.sim.kubeadm import paths as P
from lab.sim.kubeadm.apiconfig import invalid
from lab.sim.kubeadm.errors import KubeadmError, PreflightError


def _name(prefix, path):
    return prefix + path.replace("/", "-")


class Check:
    def __init__(self, name, run, warning_only=False):
        self.name = name
        self.run = run  # returns a message when the check fails, else None
        self.warning_only = warning_only


def parse_ignore_list(from_cli, from_config=()):
    """Lower-cased set of ignored check names; ``all`` together with names is an error."""
    names = []
    for item in list(from_cli) + list(from_config):
        for part in str(item).split(","):
            part = part.strip().lower()
            if part and part not in names:
                names.append(part)
    if "all" in names and len(names) > 1:
        raise KubeadmError(invalid("ignore-preflight-errors", ",".join(names),
                                   "don't specify individual checks if 'all' is used"))
    return set(names)


def _file_available(paths, path):
    return Check(_name("FileAvailable-", path),
                 lambda: f"{path} already exists" if os.path.exists(paths(path)) else None)


def _dir_available(paths, path):
    def run():
        real = paths(path)
        try:
            return f"{path} is not empty" if os.listdir(real) else None
        except FileNotFoundError:
            return None
    return Check(_name("DirAvailable-", path), run)


def _file_content(paths, path, content):
    def run():
        try:
            with open(paths(path), encoding="ascii") as handle:
                data = handle.read()
        except FileNotFoundError:
            return f"{path} does not exist"
        return None if data.startswith(content) else f"{path} contents are not set to {content}"
    return Check(_name("FileContent-", path), run)


def _port(host, port):
    return Check(f"Port-{port}", lambda: f"Port {port} is in use" if host.port_in_use(port) else None)


def _binary(host, binary, mandatory):
    return Check(f"FileExisting-{binary}",
                 lambda: None if host.which(binary) else f"{binary} not found in system path",
                 warning_only=not mandatory)


def _kubernetes_version(cluster_version, kubeadm_version):
    def run():
        if (cluster_version.major, cluster_version.minor) > (kubeadm_version.major, kubeadm_version.minor):
            return ("Kubernetes version is greater than kubeadm version. Please consider to upgrade "
                    f"kubeadm. Kubernetes version: {str(cluster_version)[1:]}. Kubeadm version: "
                    f"{kubeadm_version.major}.{kubeadm_version.minor}.x")
        return None
    return Check("KubernetesVersion", run, warning_only=True)


def _service_kubelet(host):
    return Check("Service-Kubelet",
                 lambda: None if host.service_enabled("kubelet.service") else
                 "kubelet service is not enabled, please run 'systemctl enable kubelet.service'",
                 warning_only=True)


def common_checks(host, version):
    checks = []
    for binary in ("ip", "iptables", "mount", "nsenter") + (("conntrack",) if version < (1, 32) else ()):
        checks.append(_binary(host, binary, True))
    for binary in ("ebtables", "ethtool", "socat", "tc", "touch"):
        checks.append(_binary(host, binary, False))
    checks.append(_service_kubelet(host))
    checks.append(_port(host, 10250))
    return checks


def control_plane_checks(host, paths, version, cluster_version, bind_port, etcd_data_dir,
                         secondary=False, with_common=True):
    """InitNodeChecks: the first control plane, or a joining one (``secondary``: no common checks)."""
    checks = [_kubernetes_version(cluster_version, version)]
    checks += [_port(host, bind_port), _port(host, 10259), _port(host, 10257)]
    checks += [_file_available(paths, f"{P.MANIFESTS_DIR}/{c}.yaml") for c in P.STATIC_POD_COMPONENTS]
    if not secondary and with_common:
        checks += common_checks(host, version)
        checks.append(_file_content(paths, P.IP_FORWARD, "1"))
    checks += [_port(host, 2379), _port(host, 2380), _dir_available(paths, etcd_data_dir)]
    return checks


def join_checks(host, paths, version, control_plane, ca_cert_path):
    checks = [_file_available(paths, P.KUBELET_CONF), _file_available(paths, P.BOOTSTRAP_KUBELET_CONF)]
    checks += common_checks(host, version)
    if not control_plane:
        checks.append(_file_available(paths, ca_cert_path))
    checks.append(_file_content(paths, P.IP_FORWARD, "1"))
    return checks


def root_check(host):
    return Check("IsPrivilegedUser", lambda: None if host.is_root() else "user is not running as root")


def run_checks(checks, ignored, warn):
    """Run ``checks``; print warnings (and ignored errors) with ``warn``; raise PreflightError."""
    errors = []
    for check in checks:
        message = check.run()
        if message is None:
            continue
        if check.warning_only or "all" in ignored or check.name.lower() in ignored:
            warn(f"\t[WARNING {check.name}]: {message}")
        else:
            errors.append((check.name, message))
    if errors:
        raise PreflightError(errors)
