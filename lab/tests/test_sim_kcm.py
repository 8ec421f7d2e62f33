"""The simulated kube-controller-manager and kube-scheduler against the simulated API server on etcd:
bootstrapsigner, tokencleaner, garbage collector, CSR approval/signing, leader election, health."""

import base64
import datetime
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from test_sim_api_support import (ETCD, REPO, SYSTEM_PYTHON, ApiServerProc, EtcdServer, Proc, free_port,
                                  wait_for, write)
from lab.sim import jws, kubeconfig
from lab.sim.controller_manager import enabled_controllers
from lab.sim.k8sclient import ApiError, Client

pytestmark = pytest.mark.skipif(not __import__("os").path.exists(ETCD), reason="needs /usr/bin/etcd")

SECRETS = "/api/v1/namespaces/kube-system/secrets"
CLUSTER_INFO = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
LEASE = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/"


def test_controllers_flag_semantics():
    assert enabled_controllers("*") == {"csrapproving", "csrsigning", "garbagecollector"}
    assert enabled_controllers("*,bootstrapsigner,tokencleaner,-garbagecollector") == \
        {"csrapproving", "csrsigning", "bootstrapsigner", "tokencleaner"}
    assert enabled_controllers("csrsigning,nodeipam") == {"csrsigning"}


class Components:
    def __init__(self, base):
        self.etcd = EtcdServer(base)
        self.etcd.wait_ready()
        self.api = ApiServerProc(base, self.etcd)
        self.api.wait_ready()
        self.procs = []
        self.ports = {}
        for module, user in (("controller_manager", "system:kube-controller-manager"),
                             ("scheduler", "system:kube-scheduler")):
            cert, key = self.api.ca.issue(user)
            conf = base / f"{module}.conf"
            kubeconfig.write(str(conf), kubeconfig.build(self.api.server, user, self.api.ca.cert_pem, cert, key))
            port = self.ports[module] = free_port()
            flags = [f"--kubeconfig={conf}", f"--authentication-kubeconfig={conf}",
                     f"--authorization-kubeconfig={conf}", "--bind-address=127.0.0.1", f"--secure-port={port}",
                     "--leader-elect=true", "--leader-elect-retry-period=200ms"]
            if module == "controller_manager":
                flags += ["--allocate-node-cidrs=true", "--cluster-cidr=10.244.0.0/16", "--cluster-name=kubernetes",
                          f"--cluster-signing-cert-file={self.api.ca_file}",
                          f"--cluster-signing-key-file={write(base / 'ca.key', self.api.ca.key_pem)}",
                          "--controllers=*,bootstrapsigner,tokencleaner", f"--client-ca-file={self.api.ca_file}",
                          "--use-service-account-credentials=true", "--service-cluster-ip-range=10.96.0.0/12"]
            self.procs.append(Proc([SYSTEM_PYTHON, "-m", f"lab.sim.{module}"] + flags, base / f"{module}.log",
                                   self.api.env))

    def stop(self):
        for proc in self.procs:
            proc.stop()
        self.api.stop()
        self.etcd.stop()


@pytest.fixture(scope="module")
def components(tmp_path_factory):
    started = Components(tmp_path_factory.mktemp("kcm"))
    try:
        yield started
    finally:
        started.stop()


def _token(token_id, secret, expires_in, signing="true"):
    expiration = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=expires_in)
    data = {"token-id": token_id, "token-secret": secret, "usage-bootstrap-authentication": "true",
            "usage-bootstrap-signing": signing, "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ")}
    return {"metadata": {"name": f"bootstrap-token-{token_id}"}, "type": "bootstrap.kubernetes.io/token",
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def test_health_endpoints_and_leases(components):
    for module, path in (("controller_manager", "/healthz"), ("scheduler", "/livez")):
        client = Client(f"https://127.0.0.1:{components.ports[module]}", insecure=True, timeout=2)
        wait_for(lambda c=client, p=path: c.request("GET", p, raw=True) == b"ok", 10, what=f"{module} health")
    admin = components.api.client()
    for lease in ("kube-controller-manager", "kube-scheduler"):
        wait_for(lambda n=lease: admin.get(LEASE + n)["spec"]["holderIdentity"], 10, what=f"lease {lease}")


def test_bootstrapsigner_tokencleaner_and_gc(components):
    admin = components.api.client()
    kubeconfig_text = "apiVersion: v1\nkind: Config\nclusters: []\n"
    admin.create("/api/v1/namespaces/kube-public/configmaps",
                 {"metadata": {"name": "cluster-info"}, "data": {"kubeconfig": kubeconfig_text}})
    admin.create(SECRETS, _token("abcdef", "0123456789abcdef", 3600))
    short = admin.create(SECRETS, _token("short0", "aaaaaaaaaaaaaaaa", 3))
    admin.create(SECRETS, _token("nosign", "bbbbbbbbbbbbbbbb", 3600, signing="false"))
    admin.create(SECRETS, {"metadata": {"name": "kubeadm-certs", "ownerReferences": [
        {"apiVersion": "v1", "kind": "Secret", "name": "bootstrap-token-short0", "uid": short["metadata"]["uid"],
         "blockOwnerDeletion": True, "controller": True}]}, "data": {"ca.crt": "eA=="}})

    def signatures():
        return {k: v for k, v in admin.get(CLUSTER_INFO)["data"].items() if k.startswith("jws-")}
    wait_for(lambda: set(signatures()) == {"jws-kubeconfig-abcdef", "jws-kubeconfig-short0"}, 10,
             what="signatures")
    signed = signatures()
    assert jws.verify(signed["jws-kubeconfig-abcdef"], kubeconfig_text, "abcdef", "0123456789abcdef")
    assert not jws.verify(signed["jws-kubeconfig-abcdef"], kubeconfig_text, "abcdef", "0123456789abcdeX")
    assert admin.get(f"{SECRETS}/kubeadm-certs")["data"] == {"ca.crt": "eA=="}

    wait_for(lambda: set(signatures()) == {"jws-kubeconfig-abcdef"}, 10, what="expired signature removed")
    with pytest.raises(ApiError) as err:
        admin.get(f"{SECRETS}/bootstrap-token-short0")
    assert err.value.status == 404

    def certs_gone():
        try:
            admin.get(f"{SECRETS}/kubeadm-certs")
        except ApiError as exc:
            return exc.status == 404
        return False
    wait_for(certs_gone, 10, what="kubeadm-certs collected")
    assert admin.get(f"{SECRETS}/bootstrap-token-abcdef")["metadata"]["name"] == "bootstrap-token-abcdef"


def _csr(common_name, orgs):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs] +
                        [x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    request = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return base64.b64encode(request.public_bytes(serialization.Encoding.PEM)).decode()


def test_kubelet_client_csr_is_approved_and_signed(components):
    admin = components.api.client()
    admin.create(SECRETS, _token("join01", "cccccccccccccccc", 3600))
    joiner = components.api.client(token="join01.cccccccccccccccc")
    spec = {"signerName": "kubernetes.io/kube-apiserver-client-kubelet",
            "usages": ["digital signature", "key encipherment", "client auth"]}
    good = joiner.create(CSRS, {"metadata": {"generateName": "csr-"},
                                "spec": dict(spec, request=_csr("system:node:w1", ["system:nodes"]))})
    bad = joiner.create(CSRS, {"metadata": {"generateName": "csr-"},
                               "spec": dict(spec, request=_csr("kubernetes-admin", ["system:masters"]))})
    path = f"{CSRS}/{good['metadata']['name']}"
    wait_for(lambda: joiner.get(path)["status"].get("certificate"), 10, what="certificate issued")
    issued = joiner.get(path)
    assert issued["status"]["conditions"][0]["reason"] == "AutoApproved"
    cert = x509.load_pem_x509_certificate(base64.b64decode(issued["status"]["certificate"]))
    assert cert.subject.rfc4514_string() == "CN=system:node:w1,O=system:nodes"
    assert cert.issuer == components.api.ca.cert.subject
    components.api.ca.cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes,
                                               ec.ECDSA(cert.signature_hash_algorithm))
    assert admin.get(f"{CSRS}/{bad['metadata']['name']}")["status"] == {}


def test_unknown_flag_fails():
    result = subprocess.run([SYSTEM_PYTHON, "-m", "lab.sim.controller_manager", "--bogus"], cwd=REPO,
                            capture_output=True, text=True, timeout=20)
    assert (result.returncode, result.stderr.strip()) == (1, "Error: unknown flag: --bogus")
