"""The simulated kube-apiserver (Debian python3 subprocess) on a real etcd: flags, health, storage,
and the authentication/authorization matrix kubeadm, the kubelet and kube-vip depend on."""

import base64
import datetime
import subprocess

import pytest

from test_sim_api_support import ETCD, SYSTEM_PYTHON, REPO, ApiServerProc, EtcdServer, CA, wait_for
from lab.sim.k8sclient import ApiError, Client, TransportError

pytestmark = pytest.mark.skipif(not __import__("os").path.exists(ETCD), reason="needs /usr/bin/etcd")

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
SECRETS = "/api/v1/namespaces/kube-system/secrets"
CONFIGMAPS = "/api/v1/namespaces/kube-system/configmaps"
CRBS = "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    base = tmp_path_factory.mktemp("api")
    etcd = EtcdServer(base)
    api = None
    try:
        etcd.wait_ready()
        api = ApiServerProc(base, etcd)
        api.wait_ready()
        yield api
    finally:
        if api:
            api.stop()
        etcd.stop()


def run_apiserver(*flags):
    return subprocess.run([SYSTEM_PYTHON, "-m", "lab.sim.apiserver", *flags], cwd=REPO, capture_output=True,
                          text=True, timeout=20, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def test_unknown_flag_fails_like_kube_apiserver():
    result = run_apiserver("--etcd-servers=https://127.0.0.1:2379", "--x=1")
    assert (result.returncode, result.stderr.strip()) == (1, "Error: unknown flag: --x")


def test_required_flags_and_missing_files():
    result = run_apiserver("--secure-port=6443")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: [--etcd-servers must be specified")
    result = run_apiserver("--etcd-servers=https://127.0.0.1:2379", "--service-account-issuer=x",
                           "--service-account-signing-key-file=/nonexistent/sa.key")
    assert (result.returncode, result.stderr.strip()) == (1, "Error: open /nonexistent/sa.key: no such file or "
                                                             "directory")


def test_readyz_fails_until_etcd_answers(tmp_path):
    etcd = EtcdServer(tmp_path, start=False)
    api = ApiServerProc(tmp_path, etcd)
    try:
        anonymous = api.client(anonymous=True, timeout=3)
        wait_for(lambda: anonymous.request("GET", "/livez", raw=True) == b"ok", 10, what="livez")
        with pytest.raises(ApiError) as err:
            anonymous.request("GET", "/readyz", raw=True)
        assert err.value.status == 500 and "[-]etcd failed" in str(err.value)
        etcd.start()
        api.wait_ready()
        assert anonymous.request("GET", "/readyz?verbose", raw=True).decode().endswith("readyz check passed\n")
    finally:
        api.stop()
        etcd.stop()


def test_version_and_health_are_public(cluster):
    anonymous = cluster.client(anonymous=True)
    assert anonymous.get("/version")["gitVersion"] == "v1.32.4"
    assert anonymous.request("GET", "/healthz", raw=True) == b"ok"
    with pytest.raises(ApiError) as err:
        anonymous.get("/api/v1")
    assert str(err.value) == 'forbidden: User "system:anonymous" cannot get path "/api/v1"'


def test_masters_crud_and_compare_and_swap(cluster):
    admin = cluster.client("kubernetes-admin", ["system:masters"])
    lease = admin.create(LEASES, {"metadata": {"name": "cas-lock"}, "spec": {"holderIdentity": "a"}})
    assert lease["kind"] == "Lease" and lease["metadata"]["namespace"] == "kube-system"
    stale = dict(lease, spec={"holderIdentity": "stale"})
    lease["spec"]["holderIdentity"] = "b"
    updated = admin.update(f"{LEASES}/cas-lock", lease)
    assert int(updated["metadata"]["resourceVersion"]) > int(lease["metadata"]["resourceVersion"])
    with pytest.raises(ApiError) as err:
        admin.update(f"{LEASES}/cas-lock", stale)
    assert (err.value.status, err.value.reason) == (409, "Conflict")
    assert str(err.value) == ('Operation cannot be fulfilled on leases.coordination.k8s.io "cas-lock": the object '
                              "has been modified; please apply your changes to the latest version and try again")
    with pytest.raises(ApiError) as err:
        admin.create(LEASES, {"metadata": {"name": "cas-lock"}})
    assert (err.value.status, str(err.value)) == (409, 'leases.coordination.k8s.io "cas-lock" already exists')
    patched = admin.patch(f"{LEASES}/cas-lock", {"metadata": {"labels": {"k": "v"}}})
    assert patched["spec"]["holderIdentity"] == "b" and patched["metadata"]["labels"] == {"k": "v"}
    names = [i["metadata"]["name"] for i in admin.get(f"{LEASES}?labelSelector=k%3Dv")["items"]]
    assert names == ["cas-lock"]
    admin.delete(f"{LEASES}/cas-lock")
    with pytest.raises(ApiError) as err:
        admin.get(f"{LEASES}/cas-lock")
    assert (err.value.status, str(err.value)) == (404, 'leases.coordination.k8s.io "cas-lock" not found')
    with pytest.raises(ApiError) as err:
        admin.create("/api/v1/namespaces/nowhere/configmaps", {"metadata": {"name": "x"}})
    assert str(err.value) == 'namespaces "nowhere" not found'


def test_cluster_admins_need_the_binding(cluster):
    """kube-vip issue #684: admin.conf (group kubeadm:cluster-admins) has no rights before upload-config."""
    admin_conf = cluster.client("kubernetes-admin", ["kubeadm:cluster-admins"])
    super_admin = cluster.client("kubernetes-super-admin", ["system:masters"])
    with pytest.raises(ApiError) as err:
        admin_conf.get(f"{LEASES}/plndr-cp-lock")
    assert err.value.status == 403
    assert str(err.value) == ('leases.coordination.k8s.io "plndr-cp-lock" is forbidden: User "kubernetes-admin" '
                              'cannot get resource "leases" in API group "coordination.k8s.io" in the namespace '
                              '"kube-system"')
    with pytest.raises(ApiError) as err:
        admin_conf.create(CRBS, {"metadata": {"name": "kubeadm:cluster-admins"}})
    assert str(err.value) == ('clusterrolebindings.rbac.authorization.k8s.io is forbidden: User "kubernetes-admin" '
                              'cannot create resource "clusterrolebindings" in API group '
                              '"rbac.authorization.k8s.io" at the cluster scope')
    super_admin.create(CRBS, {"metadata": {"name": "kubeadm:cluster-admins"},
                              "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                          "name": "cluster-admin"},
                              "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                            "name": "kubeadm:cluster-admins"}]})
    try:
        created = admin_conf.create(LEASES, {"metadata": {"name": "plndr-cp-lock"}})
        assert created["metadata"]["name"] == "plndr-cp-lock"
        admin_conf.delete(f"{LEASES}/plndr-cp-lock")
    finally:
        super_admin.delete(f"{CRBS}/kubeadm:cluster-admins")
    with pytest.raises(ApiError) as err:
        admin_conf.get(f"{LEASES}/plndr-cp-lock")
    assert err.value.status == 403


def _token_secret(token_id, secret, expires_in=3600, usage="true"):
    expiration = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=expires_in))
    data = {"token-id": token_id, "token-secret": secret, "usage-bootstrap-authentication": usage,
            "usage-bootstrap-signing": "true", "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token",
            "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ")}
    return {"metadata": {"name": f"bootstrap-token-{token_id}"}, "type": "bootstrap.kubernetes.io/token",
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def test_bootstrap_tokens(cluster):
    admin = cluster.client()
    admin.create(SECRETS, _token_secret("abcdef", "0123456789abcdef"))
    admin.create(SECRETS, _token_secret("expire", "0123456789abcdef", expires_in=-5))
    admin.create(SECRETS, _token_secret("nouse0", "0123456789abcdef", usage="false"))
    admin.create(CONFIGMAPS, {"metadata": {"name": "kubeadm-config"}, "data": {"ClusterConfiguration": "x"}})
    admin.create(SECRETS, {"metadata": {"name": "other"}, "data": {}})
    joiner = cluster.client(token="abcdef.0123456789abcdef")
    assert joiner.get(f"{CONFIGMAPS}/kubeadm-config")["data"] == {"ClusterConfiguration": "x"}
    with pytest.raises(ApiError) as err:
        joiner.get(f"{SECRETS}/other")
    assert str(err.value) == ('secrets "other" is forbidden: User "system:bootstrap:abcdef" cannot get resource '
                              '"secrets" in API group "" in the namespace "kube-system"')
    csr = joiner.create("/apis/certificates.k8s.io/v1/certificatesigningrequests",
                        {"metadata": {"generateName": "csr-"},
                         "spec": {"request": "", "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
                                  "usages": ["client auth"], "username": "forged"}})
    assert csr["spec"]["username"] == "system:bootstrap:abcdef"
    assert "system:bootstrappers:kubeadm:default-node-token" in csr["spec"]["groups"]
    for bad in ("expire.0123456789abcdef", "abcdef.0123456789abcdeX", "nouse0.0123456789abcdef", "nonsense"):
        with pytest.raises(ApiError) as err:
            cluster.client(token=bad).get(f"{CONFIGMAPS}/kubeadm-config")
        assert (err.value.status, str(err.value)) == (401, "Unauthorized"), bad


def test_anonymous_reads_cluster_info_only(cluster):
    admin = cluster.client()
    admin.create("/api/v1/namespaces/kube-public/configmaps",
                 {"metadata": {"name": "cluster-info"}, "data": {"kubeconfig": "k"}})
    anonymous = cluster.client(anonymous=True)
    assert anonymous.get("/api/v1/namespaces/kube-public/configmaps/cluster-info")["data"] == {"kubeconfig": "k"}
    with pytest.raises(ApiError) as err:
        anonymous.get(SECRETS)
    assert str(err.value) == ('secrets is forbidden: User "system:anonymous" cannot list resource "secrets" in '
                              'API group "" in the namespace "kube-system"')


def test_nodes_manage_only_themselves(cluster):
    node1 = cluster.client("system:node:cp1", ["system:nodes"])
    node1.create("/api/v1/nodes", {"metadata": {"name": "cp1"}})
    node1.patch("/api/v1/nodes/cp1/status", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    assert node1.get("/api/v1/nodes/cp1")["status"]["conditions"][0]["status"] == "True"
    node1.create("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {"metadata": {"name": "cp1"}})
    cluster.client().create("/api/v1/nodes", {"metadata": {"name": "cp2"}})
    with pytest.raises(ApiError) as err:
        node1.update("/api/v1/nodes/cp2", {"metadata": {"name": "cp2"}})
    assert str(err.value) == ('nodes "cp2" is forbidden: User "system:node:cp1" cannot update resource "nodes" in '
                              'API group "" at the cluster scope')
    assert [n["metadata"]["name"] for n in node1.get("/api/v1/nodes")["items"]] == ["cp1", "cp2"]


def test_client_certificate_of_another_ca_is_rejected(cluster):
    cert, key = CA("intruder").issue("kubernetes-admin", orgs=["system:masters"])
    intruder = Client(cluster.server, ca_pem=cluster.ca.cert_pem, cert_pem=cert, key_pem=key)
    with pytest.raises(TransportError) as err:
        intruder.get(SECRETS)
    assert str(err.value) == f'Get "{cluster.server}{SECRETS}?timeout=10s": remote error: tls: bad certificate'


def test_names_are_validated_per_resource_as_the_real_api_server_does(cluster):
    admin = cluster.client()
    csrs = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
    # CSR names are not validated: old kubelets made names like node-csr-<base64 with capitals>.
    legacy = "node-csr-Xk3_Qd9ZkEw-1aBcD"
    created = admin.create(csrs, {"metadata": {"name": legacy},
                                  "spec": {"request": "", "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
                                           "usages": ["client auth"]}})
    assert admin.get(f"{csrs}/{legacy}")["metadata"]["uid"] == created["metadata"]["uid"]
    # RBAC names are path segments: capitals and colons are fine.
    admin.create(CRBS, {"metadata": {"name": "system:Legacy-Binding"},
                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                        "subjects": []})
    with pytest.raises(ApiError) as err:
        admin.create(CONFIGMAPS, {"metadata": {"name": "Capital"}})
    assert err.value.status == 422
    assert str(err.value) == (
        'ConfigMap "Capital" is invalid: metadata.name: Invalid value: "Capital": a lowercase RFC 1123 subdomain '
        "must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an "
        "alphanumeric character (e.g. 'example.com', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
    for path, name in ((CONFIGMAPS, "a..b"), ("/api/v1/nodes", "system:node:cp1"), (LEASES, "-lead")):
        with pytest.raises(ApiError) as err:
            admin.create(path, {"metadata": {"name": name}})
        assert err.value.status == 422, name
    with pytest.raises(ApiError) as err:
        admin.create("/api/v1/namespaces", {"metadata": {"name": "has.dot"}})
    assert "a lowercase RFC 1123 label must consist of" in str(err.value)
    with pytest.raises(ApiError) as err:
        admin.create("/api/v1/namespaces", {"metadata": {"name": "n" * 64}})
    assert str(err.value).endswith("must be no more than 63 characters")
