"""The kubelet's conversation with the API server: TLS bootstrap, Node registration, node Lease.

Runs in a thread of ``lab.sim.kubelet`` so that static Pods start meanwhile (the local API server
of a control plane is itself one of them). Every failure is logged and retried, as the kubelet does.
"""

import base64
import hashlib
import os
import sys
import time
from datetime import datetime, timezone

import yaml

from lab.sim import k8sclient

CSR_API = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
KUBELET_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
NODE_LEASE_API = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
CURRENT_PEM = "kubelet-client-current.pem"
RETRY = 2.0
CSR_POLL = 0.5
GENERATED_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's generateName suffix letters


def log(message):
    """klog-like line on stderr (the service manager keeps it)."""
    now = datetime.now(timezone.utc).strftime("%m%d %H:%M:%S.%f")
    sys.stderr.write(f"I{now} {os.getpid():>7} kubelet.go] {message}\n")
    sys.stderr.flush()


def micro_time(epoch=None):
    return datetime.fromtimestamp(epoch or time.time(), timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- the certificate store (/var/lib/kubelet/pki) ----------------------------------------------------

def store_certificate(cert_dir, cert_pem, key_pem):
    """``kubelet-client-<timestamp>.pem`` (certificate + key, 0600) and the ``-current`` symlink to it."""
    os.makedirs(cert_dir, mode=0o755, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d-%H-%M-%S")
    name = f"kubelet-client-{stamp}.pem"
    path = os.path.join(cert_dir, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(cert_pem.rstrip(b"\n") + b"\n" + key_pem)
    link = os.path.join(cert_dir, CURRENT_PEM)
    tmp = link + ".tmp"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(path, tmp)
    os.replace(tmp, link)
    return link


def rotatable_kubeconfig(server, ca_pem, pem_path):
    """kubelet.conf as the kubelet writes it after TLS bootstrap (client cert by file path)."""
    return {
        "apiVersion": "v1",
        "clusters": [{"cluster": {"certificate-authority-data": base64.b64encode(ca_pem).decode(),
                                  "server": server}, "name": "default-cluster"}],
        "contexts": [{"context": {"cluster": "default-cluster", "namespace": "default",
                                  "user": "default-auth"}, "name": "default-context"}],
        "current-context": "default-context",
        "kind": "Config",
        "preferences": {},
        "users": [{"name": "default-auth", "user": {"client-certificate": pem_path, "client-key": pem_path}}],
    }


def write_kubeconfig(path, data):
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle, default_flow_style=False)
    os.replace(tmp, path)


def csr_for_node(node_name):
    """(CSR PEM, key PEM): ECDSA P-256, CN system:node:<name>, O system:nodes, as the kubelet asks."""
    # cryptography is heavy; only a bootstrapping kubelet needs it.
    from cryptography import x509  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives import hashes, serialization  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.asymmetric import ec  # pylint: disable=import-outside-toplevel
    from cryptography.x509.oid import NameOID  # pylint: disable=import-outside-toplevel
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node_name}")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return csr.public_bytes(serialization.Encoding.PEM), key_pem


def csr_object(csr_pem):
    """The kubelet sends ``generateName: csr-``; the name is made here as the API server would."""
    digest = hashlib.sha256(csr_pem).digest()
    suffix = "".join(GENERATED_NAME_ALPHABET[b % len(GENERATED_NAME_ALPHABET)] for b in digest[:5])
    return {
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": f"csr-{suffix}"},
        "spec": {"request": base64.b64encode(csr_pem).decode(), "signerName": KUBELET_SIGNER,
                 "usages": ["digital signature", "client auth"]},
    }


def tls_bootstrap(kubelet, stopping):
    """Obtain a client certificate with bootstrap-kubelet.conf; write the store and kubelet.conf."""
    from lab.sim import kubeconfig  # pylint: disable=import-outside-toplevel
    flags = kubelet.flags
    creds = kubeconfig.load_credentials(flags["bootstrap-kubeconfig"])
    client = k8sclient.Client(creds.server, ca_pem=creds.ca_pem, cert_pem=creds.cert_pem,
                              key_pem=creds.key_pem, token=creds.token, insecure=creds.insecure,
                              tls_server_name=creds.tls_server_name, user_agent="kubelet")
    csr_pem, key_pem = csr_for_node(kubelet.node_name)
    request = csr_object(csr_pem)
    name = request["metadata"]["name"]
    while not stopping.is_set():
        try:
            client.create(CSR_API, request)
            break
        except k8sclient.ApiError as exc:
            if exc.status == 409:
                break
            log(f"Failed while requesting a signed certificate from the control plane: {exc}")
        except k8sclient.TransportError as exc:
            log(f"Failed while requesting a signed certificate from the control plane: {exc}")
        stopping.wait(RETRY)
    log(f'Waiting for the certificate signing request "{name}" to be signed')
    while not stopping.is_set():
        try:
            csr = client.get(f"{CSR_API}/{name}")
            status = csr.get("status") or {}
            for condition in status.get("conditions") or []:
                if condition.get("type") in ("Denied", "Failed"):
                    raise RuntimeError(f"certificate signing request {name} is {condition['type'].lower()}: "
                                       f"{condition.get('message', '')}")
            if status.get("certificate"):
                cert_pem = base64.b64decode(status["certificate"])
                break
        except (k8sclient.ApiError, k8sclient.TransportError) as exc:
            log(f"Failed while requesting a signed certificate from the control plane: {exc}")
        stopping.wait(CSR_POLL)
    else:
        return False
    pem_path = store_certificate(flags["cert-dir"], cert_pem, key_pem)
    write_kubeconfig(flags["kubeconfig"], rotatable_kubeconfig(creds.server, creds.ca_pem, pem_path))
    log(f"Certificate signed: {pem_path}; wrote {flags['kubeconfig']}")
    return True


def ensure_certificate_store(kubelet):
    """With kubeadm's embedded-cert kubelet.conf, seed the store from it (as the cert manager does)."""
    from lab.sim import kubeconfig  # pylint: disable=import-outside-toplevel
    link = os.path.join(kubelet.flags["cert-dir"], CURRENT_PEM)
    if os.path.exists(link):
        return
    creds = kubeconfig.load_credentials(kubelet.flags["kubeconfig"])
    if creds.cert_pem and creds.key_pem:
        store_certificate(kubelet.flags["cert-dir"], creds.cert_pem, creds.key_pem)


def node_object(kubelet):
    labels = {"beta.kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
              "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": kubelet.node_name,
              "kubernetes.io/os": "linux"}
    for item in filter(None, kubelet.flags.get("node-labels", "").split(",")):
        key, _, value = item.partition("=")
        labels[key] = value
    taints = []
    for item in filter(None, kubelet.flags.get("register-with-taints", "").split(",")):
        key_value, _, effect = item.partition(":")
        key, _, value = key_value.partition("=")
        taints.append({"key": key, "effect": effect, **({"value": value} if value else {})})
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": kubelet.node_name, "labels": labels,
                     "annotations": {"volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
        "spec": {"taints": taints} if taints else {},
        "status": {
            "addresses": [{"type": "InternalIP", "address": kubelet.node_ip},
                          {"type": "Hostname", "address": kubelet.node_name}],
            # No CNI in the lab, as on a fresh kubeadm node: NotReady, with the real reason.
            "conditions": [{"type": "Ready", "status": "False", "reason": "KubeletNotReady",
                            "message": "container runtime network not ready: NetworkReady=false "
                                       "reason:NetworkPluginNotReady message:Network plugin returns "
                                       "error: cni plugin not initialized",
                            "lastHeartbeatTime": now, "lastTransitionTime": now}],
            "nodeInfo": {"kubeletVersion": str(kubelet.sim.kubernetes_version),
                         "operatingSystem": "linux", "architecture": "amd64",
                         "containerRuntimeVersion": "lab-sim://0"},
        },
    }


def register_node(client, kubelet):
    try:
        client.create("/api/v1/nodes", node_object(kubelet))
        log(f'Successfully registered node "{kubelet.node_name}"')
    except k8sclient.ApiError as exc:
        if exc.status != 409:
            raise
        log(f'Node "{kubelet.node_name}" was previously registered')


def renew_node_lease(client, kubelet):
    path = f"{NODE_LEASE_API}/{kubelet.node_name}"
    spec = {"holderIdentity": kubelet.node_name, "leaseDurationSeconds": 40, "renewTime": micro_time()}
    try:
        lease = client.get(path)
    except k8sclient.ApiError as exc:
        if exc.status != 404:
            raise
        client.create(NODE_LEASE_API, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                       "metadata": {"name": kubelet.node_name, "namespace": "kube-node-lease"},
                                       "spec": spec})
        return
    lease["spec"] = {**(lease.get("spec") or {}), **spec}
    client.update(path, lease)


def run(kubelet):
    """Bootstrap if needed, register the Node, then renew the node Lease until the kubelet stops."""
    flags, stopping = kubelet.flags, kubelet.stopping
    while not stopping.is_set():
        if os.path.exists(flags["kubeconfig"]):
            break
        if os.path.exists(flags["bootstrap-kubeconfig"]):
            try:
                if tls_bootstrap(kubelet, stopping):
                    break
            except Exception as exc:  # pylint: disable=broad-except
                log(f"TLS bootstrap failed: {exc}")
        # Standalone until a kubeconfig appears (kubeadm writes it after starting the kubelet).
        stopping.wait(RETRY)
    registered = False
    client = None
    while not stopping.is_set():
        try:
            if client is None:
                ensure_certificate_store(kubelet)
                client = k8sclient.Client.from_kubeconfig(flags["kubeconfig"], user_agent="kubelet")
            if not registered:
                register_node(client, kubelet)
                registered = True
            renew_node_lease(client, kubelet)
            delay = 10.0
        except (k8sclient.ApiError, k8sclient.TransportError) as exc:
            log(f'Unable to register node with API server" err="{exc}" node="{kubelet.node_name}"'
                 if not registered else f"failed to update lease: {exc}")
            delay = RETRY
        except (OSError, ValueError) as exc:
            log(f"invalid kubeconfig {flags['kubeconfig']}: {exc}")
            client, delay = None, RETRY
        stopping.wait(delay)
