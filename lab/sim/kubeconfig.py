"""Kubeconfig files in kubeadm's shape: one cluster, one user, one context, data embedded."""

import base64
import os
from dataclasses import dataclass

import yaml


@dataclass
class Credentials:
    """What a client needs from a kubeconfig's current context (PEM as bytes)."""

    server: str
    ca_pem: bytes = None
    cert_pem: bytes = None
    key_pem: bytes = None
    token: str = None
    insecure: bool = False
    tls_server_name: str = None
    cluster_name: str = None
    user_name: str = None


def _b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def build(server, user, ca_pem, cert_pem=None, key_pem=None, token=None, cluster_name="kubernetes"):
    """The dict kubeadm writes: context ``<user>@<cluster>``, certificate data embedded."""
    context = f"{user}@{cluster_name}"
    user_entry = {}
    if cert_pem is not None:
        user_entry["client-certificate-data"] = _b64(cert_pem)
    if key_pem is not None:
        user_entry["client-key-data"] = _b64(key_pem)
    if token is not None:
        user_entry["token"] = token
    return {
        "apiVersion": "v1",
        "clusters": [{"cluster": {"certificate-authority-data": _b64(ca_pem), "server": server},
                      "name": cluster_name}],
        "contexts": [{"context": {"cluster": cluster_name, "user": user}, "name": context}],
        "current-context": context,
        "kind": "Config",
        "preferences": {},
        "users": [{"name": user, "user": user_entry}],
    }


def dump(config):
    return yaml.safe_dump(config, default_flow_style=False, sort_keys=False)


def write(path, config, mode=0o600):
    """Write atomically with ``mode`` (kubeadm writes kubeconfigs 0600)."""
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(dump(config))
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def load(path):
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a kubeconfig")
    return data


def _named(items, name, kind, path):
    for item in items or []:
        if item.get("name") == name:
            return item.get(kind) or {}
    raise ValueError(f'{path}: {kind} "{name}" not found in the kubeconfig')


def _data(entry, key, base_dir):
    """PEM bytes from ``<key>-data`` (base64) or ``<key>`` (a file path, relative to the kubeconfig)."""
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        file_path = os.path.join(base_dir, entry[key])
        with open(file_path, "rb") as handle:
            return handle.read()
    return None


def credentials(config, path="kubeconfig"):
    """Resolve the current context of a loaded kubeconfig into :class:`Credentials`."""
    base_dir = os.path.dirname(os.path.abspath(path))
    current = config.get("current-context")
    if not current:
        raise ValueError(f"{path}: no current-context set")
    context = _named(config.get("contexts"), current, "context", path)
    cluster = _named(config.get("clusters"), context.get("cluster"), "cluster", path)
    user = _named(config.get("users"), context.get("user"), "user", path)
    if not cluster.get("server"):
        raise ValueError(f"{path}: cluster has no server")
    return Credentials(
        server=cluster["server"],
        ca_pem=_data(cluster, "certificate-authority", base_dir),
        cert_pem=_data(user, "client-certificate", base_dir),
        key_pem=_data(user, "client-key", base_dir),
        token=user.get("token"),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        tls_server_name=cluster.get("tls-server-name"),
        cluster_name=context.get("cluster"),
        user_name=context.get("user"),
    )


def load_credentials(path):
    return credentials(load(path), path)
