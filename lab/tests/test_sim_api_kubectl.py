"""The lab kubectl (Debian python3 subprocess) against the simulated API server."""

import json
import subprocess

import pytest

from test_sim_api_support import ETCD, REPO, SYSTEM_PYTHON, ApiServerProc, EtcdServer, free_port
from lab.sim import kubeconfig
from lab.sim.kubectl import human_duration, table

pytestmark = pytest.mark.skipif(not __import__("os").path.exists(ETCD), reason="needs /usr/bin/etcd")


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    base = tmp_path_factory.mktemp("kubectl")
    etcd = EtcdServer(base)
    server = None
    try:
        etcd.wait_ready()
        server = ApiServerProc(base, etcd, version="1.31.2")
        server.wait_ready()
        for name, groups in (("admin", ["system:masters"]), ("cluster-admins", ["kubeadm:cluster-admins"])):
            cert, key = server.ca.issue("kubernetes-admin", orgs=groups)
            kubeconfig.write(str(base / f"{name}.conf"),
                             kubeconfig.build(server.server, "kubernetes-admin", server.ca.cert_pem, cert, key))
        server.base = base
        yield server
    finally:
        if server:
            server.stop()
        etcd.stop()


def kubectl(api, *args, conf="admin"):
    env = dict(api.env, KUBECONFIG=str(api.base / f"{conf}.conf"))
    return subprocess.run([SYSTEM_PYTHON, "-m", "lab.sim.kubectl", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("seconds,text", [(5, "5s"), (119, "119s"), (130, "2m10s"), (600, "10m"),
                                          (3 * 3600 + 60, "3h1m"), (30 * 3600, "30h"), (3 * 86400, "3d"),
                                          (3 * 86400 + 3600, "3d1h"), (400 * 86400, "400d")])
def test_age_column(seconds, text):
    assert human_duration(seconds) == text


def test_table_layout():
    assert table([["NAME", "DATA"], ["kube-root-ca.crt", "1"]]) == "NAME               DATA\nkube-root-ca.crt   1\n"


def test_get_nodes_table_wide_and_name(api):
    admin = api.client()
    admin.create("/api/v1/nodes", {"metadata": {"name": "cp1", "labels": {"node-role.kubernetes.io/control-plane": ""}},
                                   "status": {"conditions": [{"type": "Ready", "status": "True"}],
                                              "addresses": [{"type": "InternalIP", "address": "198.51.100.11"}],
                                              "nodeInfo": {"kubeletVersion": "v1.31.2"}}})
    result = kubectl(api, "get", "nodes")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert lines[1].split()[:3] == ["cp1", "Ready", "control-plane"] and lines[1].split()[-1] == "v1.31.2"
    wide = kubectl(api, "get", "no", "-o", "wide").stdout.splitlines()
    assert "INTERNAL-IP" in wide[0] and "198.51.100.11" in wide[1]
    assert kubectl(api, "get", "node", "cp1", "-o", "name").stdout == "node/cp1\n"
    assert json.loads(kubectl(api, "get", "nodes", "cp1", "-o", "json").stdout)["kind"] == "Node"


def test_get_leases_namespaces_and_yaml(api):
    api.client().create("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases",
                        {"metadata": {"name": "plndr-cp-lock"}, "spec": {"holderIdentity": "cp1"}})
    result = kubectl(api, "get", "leases", "-n", "kube-system")
    assert result.stdout.splitlines()[1].split()[:2] == ["plndr-cp-lock", "cp1"]
    assert kubectl(api, "get", "lease", "-A", "-o", "name").stdout == \
        "lease.coordination.k8s.io/plndr-cp-lock\n"
    assert kubectl(api, "get", "lease", "-A").stdout.split()[:4] == ["NAMESPACE", "NAME", "HOLDER", "AGE"]
    assert "holderIdentity: cp1" in kubectl(api, "get", "lease", "plndr-cp-lock", "-n", "kube-system",
                                            "-o", "yaml").stdout
    empty = kubectl(api, "get", "configmaps")
    assert (empty.returncode, empty.stdout, empty.stderr) == (0, "", "No resources found in default namespace.\n")


def test_errors_read_like_kubectl(api):
    result = kubectl(api, "get", "secrets", "-n", "kube-system", conf="cluster-admins")
    assert result.returncode == 1
    assert result.stderr == ('Error from server (Forbidden): secrets is forbidden: User "kubernetes-admin" cannot '
                             'list resource "secrets" in API group "" in the namespace "kube-system"\n')
    missing = kubectl(api, "get", "cm", "nope", "-n", "kube-system")
    assert (missing.returncode, missing.stderr) == (1, 'Error from server (NotFound): configmaps "nope" not found\n')
    unknown = kubectl(api, "get", "widgets")
    assert (unknown.returncode, unknown.stderr) == (1, 'error: the server doesn\'t have a resource type "widgets"\n')
    port = free_port()
    refused = kubectl(api, "get", "nodes", f"--server=https://127.0.0.1:{port}")
    assert (refused.returncode, refused.stderr) == (1, f"The connection to the server 127.0.0.1:{port} was refused - "
                                                       "did you specify the right host or port?\n")


def test_raw_and_version(api):
    assert kubectl(api, "get", "--raw", "/livez").stdout == "ok"
    assert kubectl(api, "get", "--raw=/readyz").stdout == "ok"
    version = kubectl(api, "version")
    assert version.stdout.splitlines() == ["Client Version: v1.31.2", "Kustomize Version: v5.5.0",
                                           "Server Version: v1.31.2"]
