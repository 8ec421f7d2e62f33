"""What every kubeadm command shares: version, time, output streams, paths, host, API helpers."""

import datetime
import http.client
import os
import sys
import time

import yaml

from lab.sim import k8sclient
from lab.sim.config import go_duration
from lab.sim.kubeadm import paths as P
from lab.sim.kubeadm.host import Host
from lab.sim.kubeadm.paths import Paths

POLL_INTERVAL = 0.5
API_TIMEOUT = 10.0  # client-go's per-request timeout kubeadm uses (``?timeout=10s``)


class Runtime:
    def __init__(self, sim, paths=None, host=None, out=None, err=None, stdin=None, verbosity=0):
        self.sim = sim
        self.version = sim.kubernetes_version
        self.paths = paths or Paths("/")
        self.host = host or Host()
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.stdin = stdin or sys.stdin
        self.verbosity = verbosity

    # -- output ---------------------------------------------------------------------------------

    def say(self, text=""):
        self.out.write(text + "\n")
        self.out.flush()

    def warn(self, text):
        self.err.write(text + "\n")
        self.err.flush()

    def klog(self, level, message, source="kubeadm.go:0"):
        """A klog line as kubeadm's warnings look on stderr: ``W1126 09:03:06.123456    1234 f.go:1] msg``."""
        now = datetime.datetime.now()
        header = f"{level}{now:%m%d %H:%M:%S}.{now.microsecond:06d} {os.getpid():>7} {source}]"
        self.warn(f"{header} {message}")

    def scaled(self, seconds):
        return self.sim.scaled(seconds)

    # -- API ------------------------------------------------------------------------------------

    def client(self, conf, server=None, timeout=API_TIMEOUT):
        return k8sclient.Client.from_kubeconfig(self.paths(conf), server=server, timeout=timeout,
                                                user_agent=f"kubeadm/{self.version}")


def read_yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def poll(timeout, attempt, interval=POLL_INTERVAL):
    """Call ``attempt()`` until it returns something truthy or ``timeout`` seconds pass.
    Returns (result, elapsed); result is None on timeout."""
    start = time.monotonic()
    while True:
        result = attempt()
        elapsed = time.monotonic() - start
        if result:
            return result, elapsed
        if elapsed >= timeout:
            return None, elapsed
        time.sleep(min(interval, max(0.0, timeout - elapsed)))


def kubelet_healthy():
    conn = http.client.HTTPConnection("127.0.0.1", 10248, timeout=2)
    try:
        conn.request("GET", "/healthz")
        response = conn.getresponse()
        return response.status == 200 and response.read().strip() == b"ok"
    except OSError:
        return False
    finally:
        conn.close()


def create_or_update(client, collection, obj):
    """POST ``obj``; on AlreadyExists PUT it over the current object (kubeadm's CreateOrUpdate)."""
    try:
        return client.create(collection, obj)
    except k8sclient.ApiError as exc:
        if exc.status != 409:
            raise
    path = f"{collection}/{obj['metadata']['name']}"
    current = client.get(path)
    obj = dict(obj)
    obj["metadata"] = dict(obj["metadata"], resourceVersion=current["metadata"].get("resourceVersion"))
    return client.update(path, obj)


def create_if_missing(client, collection, obj):
    try:
        return client.create(collection, obj)
    except k8sclient.ApiError as exc:
        if exc.status != 409:
            raise
        return None


def ns_path(namespace, resource, name=None):
    base = f"/api/v1/namespaces/{namespace}/{resource}"
    return f"{base}/{name}" if name else base


RBAC = "/apis/rbac.authorization.k8s.io/v1"


def rbac_path(resource, namespace=None):
    return f"{RBAC}/namespaces/{namespace}/{resource}" if namespace else f"{RBAC}/{resource}"


def cluster_role_binding(name, role, subjects):
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": subject}
                     for kind, subject in subjects],
    }


def role(name, namespace, rules):
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": name, "namespace": namespace}, "rules": rules}


def role_binding(name, namespace, role_name, subjects):
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": subject}
                     for kind, subject in subjects],
    }


def elapsed_text(seconds):
    return go_duration(seconds)


__all__ = ["Runtime", "poll", "kubelet_healthy", "create_or_update", "ns_path", "P"]
