"""The simulated kube-controller-manager: health on :10257 and the controllers kubeadm relies on.

Controllers (each a function of a client and the current time, so tests call them directly):
bootstrapsigner, tokencleaner, csrapproving + csrsigning (kubelet client certificates),
garbagecollector (ownerReferences). Leader election on Lease ``kube-system/kube-controller-manager``.
Run as ``python3 -m lab.sim.controller_manager <the flags of kubeadm's manifest>``.
"""

import base64
import datetime
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from lab.sim import jws
from lab.sim.apiserver import FlagError, TLSServer, parse_flags, parse_rfc3339
from lab.sim.config import parse_go_duration
from lab.sim.k8sclient import ApiError, Client

COMMON_VALUE_FLAGS = {
    "authentication-kubeconfig", "authorization-kubeconfig", "bind-address", "kubeconfig", "secure-port",
    "client-ca-file", "requestheader-client-ca-file", "requestheader-allowed-names",
    "requestheader-extra-headers-prefix", "requestheader-group-headers", "requestheader-username-headers",
    "leader-elect-lease-duration", "leader-elect-renew-deadline", "leader-elect-retry-period",
    "leader-elect-resource-lock", "leader-elect-resource-name", "leader-elect-resource-namespace",
    "v", "vmodule", "feature-gates", "tls-cert-file", "tls-private-key-file", "tls-min-version",
    "tls-cipher-suites", "cert-dir", "kube-api-qps", "kube-api-burst", "master", "log-flush-frequency",
    "logging-format", "authorization-always-allow-paths", "profiling",
}
COMMON_BOOL_FLAGS = {"leader-elect", "help", "version", "logtostderr", "alsologtostderr",
                     "authentication-skip-lookup", "authentication-tolerate-lookup-failure"}
KCM_VALUE_FLAGS = COMMON_VALUE_FLAGS | {
    "cluster-cidr", "cluster-name", "cluster-signing-cert-file", "cluster-signing-key-file",
    "cluster-signing-duration", "controllers", "node-cidr-mask-size", "node-cidr-mask-size-ipv4",
    "node-cidr-mask-size-ipv6", "root-ca-file", "service-account-private-key-file",
    "service-cluster-ip-range", "cloud-provider", "node-monitor-grace-period", "node-monitor-period",
    "pod-eviction-timeout", "terminated-pod-gc-threshold", "concurrent-deployment-syncs",
    "cluster-signing-kubelet-client-cert-file", "cluster-signing-kubelet-client-key-file",
    "horizontal-pod-autoscaler-sync-period", "flex-volume-plugin-dir",
}
KCM_BOOL_FLAGS = COMMON_BOOL_FLAGS | {"allocate-node-cidrs", "use-service-account-credentials",
                                      "configure-cloud-routes"}
DISABLED_BY_DEFAULT = {"bootstrapsigner", "tokencleaner"}
ALL_CONTROLLERS = ("bootstrapsigner", "tokencleaner", "csrapproving", "csrsigning", "garbagecollector")
TOKEN_TYPE = "bootstrap.kubernetes.io/token"
KUBELET_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
SECRETS = "/api/v1/namespaces/kube-system/secrets"
CLUSTER_INFO = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


def log(component, message, level="I"):
    stamp = datetime.datetime.now().strftime("%m%d %H:%M:%S.%f")
    sys.stderr.write(f"{level}{stamp} {os.getpid():>7} {component}] {message}\n")
    sys.stderr.flush()


def enabled_controllers(spec):
    """kube-controller-manager's --controllers: ``*`` = the defaults, ``name`` adds, ``-name`` removes."""
    items = [i.strip() for i in (spec or "*").split(",") if i.strip()]
    chosen = set()
    for item in items:
        name = item.lstrip("-")
        if item != "*" and name not in ALL_CONTROLLERS:
            continue  # the real controllers the simulator does not need: accepted, not run
        if item == "*":
            chosen |= set(ALL_CONTROLLERS) - DISABLED_BY_DEFAULT
        elif item.startswith("-"):
            chosen.discard(name)
        else:
            chosen.add(name)
    return chosen


# -- bootstrap tokens ------------------------------------------------------------------------

def _token_data(secret):
    return {k: base64.b64decode(v).decode(errors="replace") for k, v in (secret.get("data") or {}).items()}


def token_expired(data, now):
    expiration = data.get("expiration")
    if not expiration:
        return False
    try:
        return parse_rfc3339(expiration) <= now
    except ValueError:
        return True


def _token_secrets(client):
    items = client.get(f"{SECRETS}?fieldSelector=type%3D{TOKEN_TYPE.replace('/', '%2F')}")["items"]
    return [s for s in items if s.get("type") == TOKEN_TYPE]


def sign_cluster_info(client, now):
    """bootstrapsigner: one ``jws-kubeconfig-<id>`` per valid signing token, none for others."""
    try:
        info = client.get(CLUSTER_INFO)
    except ApiError as exc:
        if exc.status == 404:
            return False
        raise
    data = info.get("data") or {}
    content = data.get("kubeconfig")
    if content is None:
        return False
    wanted = {}
    for secret in _token_secrets(client):
        token = _token_data(secret)
        token_id, token_secret = token.get("token-id"), token.get("token-secret")
        if (not token_id or not token_secret or token.get("usage-bootstrap-signing") != "true"
                or token_expired(token, now) or secret["metadata"]["name"] != f"bootstrap-token-{token_id}"):
            continue
        wanted[f"jws-kubeconfig-{token_id}"] = jws.sign(content, token_id, token_secret)
    current = {k: v for k, v in data.items() if k.startswith("jws-kubeconfig-")}
    if current == wanted:
        return False
    info["data"] = {k: v for k, v in data.items() if not k.startswith("jws-kubeconfig-")}
    info["data"].update(wanted)
    client.update(CLUSTER_INFO, info)  # CAS on the resourceVersion read above
    return True


def clean_tokens(client, now):
    """tokencleaner: delete expired bootstrap-token Secrets; the names deleted."""
    deleted = []
    for secret in _token_secrets(client):
        if token_expired(_token_data(secret), now):
            name = secret["metadata"]["name"]
            try:
                client.delete(f"{SECRETS}/{name}")
                deleted.append(name)
            except ApiError as exc:
                if exc.status != 404:
                    raise
    return deleted


# -- garbage collector ------------------------------------------------------------------------

GC_RESOURCES = (("/api/v1", "secrets", "Secret"), ("/api/v1", "configmaps", "ConfigMap"))
OWNER_PATHS = {("v1", "Secret"): "/api/v1/namespaces/{ns}/secrets/{name}",
               ("v1", "ConfigMap"): "/api/v1/namespaces/{ns}/configmaps/{name}",
               ("v1", "Node"): "/api/v1/nodes/{name}"}


def collect_garbage(client):
    """Delete objects all of whose owners are gone (another uid counts as gone); the paths deleted."""
    deleted = []
    for prefix, plural, _ in GC_RESOURCES:
        for obj in client.get(f"{prefix}/{plural}")["items"]:
            meta = obj["metadata"]
            owners = meta.get("ownerReferences") or []
            if not owners:
                continue
            alive = False
            for ref in owners:
                template = OWNER_PATHS.get((ref.get("apiVersion"), ref.get("kind")))
                if template is None:
                    alive = True  # an owner kind the simulator does not store: never collect
                    break
                try:
                    owner = client.get(template.format(ns=meta.get("namespace"), name=ref.get("name")))
                except ApiError as exc:
                    if exc.status != 404:
                        raise
                    continue
                if owner["metadata"].get("uid") == ref.get("uid"):
                    alive = True
                    break
            if not alive:
                path = f"/api/v1/namespaces/{meta['namespace']}/{plural}/{meta['name']}"
                try:
                    client.delete(path)
                    deleted.append(path)
                except ApiError as exc:
                    if exc.status != 404:
                        raise
    return deleted


# -- CSR approval and signing -------------------------------------------------------------------

def _condition(csr, kind):
    return any(c.get("type") == kind for c in (csr.get("status") or {}).get("conditions") or [])


def node_client_name(csr_pem):
    """csrapproving's check: subject O=[system:nodes], CN=system:node:<name>, no SANs; the CN or None."""
    from cryptography import x509  # pylint: disable=import-outside-toplevel
    from cryptography.x509.oid import NameOID  # pylint: disable=import-outside-toplevel
    request = x509.load_pem_x509_csr(csr_pem)
    orgs = [a.value for a in request.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    names = [a.value for a in request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        return None
    except x509.ExtensionNotFound:
        pass
    if orgs == ["system:nodes"] and len(names) == 1 and names[0].startswith("system:node:"):
        return names[0]
    return None


class Signer:
    """Signs kubelet client certificates with --cluster-signing-cert-file/--cluster-signing-key-file."""

    def __init__(self, cert_file, key_file, duration_seconds):
        from cryptography import x509  # pylint: disable=import-outside-toplevel
        from cryptography.hazmat.primitives import serialization  # pylint: disable=import-outside-toplevel
        with open(cert_file, "rb") as handle:
            self.ca_cert = x509.load_pem_x509_certificate(handle.read())
        with open(key_file, "rb") as handle:
            self.ca_key = serialization.load_pem_private_key(handle.read(), password=None)
        self.duration = duration_seconds

    def sign(self, csr_pem):
        from cryptography import x509  # pylint: disable=import-outside-toplevel
        from cryptography.hazmat.primitives import hashes, serialization  # pylint: disable=import-outside-toplevel
        from cryptography.x509.oid import ExtendedKeyUsageOID  # pylint: disable=import-outside-toplevel
        request = x509.load_pem_x509_csr(csr_pem)
        now = datetime.datetime.utcnow()
        not_after = min(now + datetime.timedelta(seconds=self.duration), self.ca_cert.not_valid_after)
        cert = (x509.CertificateBuilder().subject_name(request.subject).issuer_name(self.ca_cert.subject)
                .public_key(request.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(not_after)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                             key_encipherment=True, data_encipherment=False, key_agreement=False,
                                             key_cert_sign=False, crl_sign=False, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .sign(self.ca_key, hashes.SHA256()))
        return cert.public_bytes(serialization.Encoding.PEM)


def approve_csrs(client):
    """csrapproving: kubelet client CSRs from bootstrappers (new node) or from that node (renewal)."""
    approved = []
    for csr in client.get(CSRS)["items"]:
        spec = csr.get("spec") or {}
        if _condition(csr, "Approved") or _condition(csr, "Denied") or spec.get("signerName") != KUBELET_CLIENT_SIGNER:
            continue
        try:
            subject_cn = node_client_name(base64.b64decode(spec.get("request", "")))
        except ValueError:
            subject_cn = None
        if subject_cn is None:
            continue
        groups = spec.get("groups") or []
        if "system:bootstrappers" in groups:
            message = "Auto approving kubelet client certificate after SubjectAccessReview."
        elif "system:nodes" in groups and spec.get("username") == subject_cn:
            message = "Auto approving self kubelet client certificate after SubjectAccessReview."
        else:
            continue
        csr.setdefault("status", {}).setdefault("conditions", []).append({
            "type": "Approved", "status": "True", "reason": "AutoApproved", "message": message,
            "lastUpdateTime": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")})
        client.update(f"{CSRS}/{csr['metadata']['name']}/approval", csr)
        approved.append(csr["metadata"]["name"])
    return approved


def sign_csrs(client, signer_factory):
    """csrsigning: issue the certificate of approved kubelet client CSRs (the Signer is made on demand)."""
    signed = []
    for csr in client.get(CSRS)["items"]:
        spec, status = csr.get("spec") or {}, csr.get("status") or {}
        if (not _condition(csr, "Approved") or _condition(csr, "Denied") or status.get("certificate")
                or spec.get("signerName") != KUBELET_CLIENT_SIGNER):
            continue
        certificate = signer_factory().sign(base64.b64decode(spec["request"]))
        csr["status"]["certificate"] = base64.b64encode(certificate).decode()
        client.update(f"{CSRS}/{csr['metadata']['name']}/status", csr)
        signed.append(csr["metadata"]["name"])
    return signed


# -- leader election ----------------------------------------------------------------------------

def _micro_time(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_micro_time(text):
    return datetime.datetime.strptime(text.rstrip("Z")[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=datetime.timezone.utc)


class LeaderElector:
    """client-go's Lease lock, simplified: acquire when free or expired, renew while holding."""

    def __init__(self, client, name, identity, lease_duration=15.0, renew_deadline=10.0, retry_period=2.0,
                 namespace="kube-system"):
        self.client, self.identity = client, identity
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
        self.collection = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self.name = name
        self.lease_duration, self.renew_deadline, self.retry_period = lease_duration, renew_deadline, retry_period
        self._renewed_at = None

    @property
    def leading(self):
        return self._renewed_at is not None and time.monotonic() - self._renewed_at < self.renew_deadline

    def try_acquire_or_renew(self):
        now = datetime.datetime.now(datetime.timezone.utc)
        try:
            lease = self.client.get(self.path)
        except ApiError as exc:
            if exc.status != 404:
                raise
            lease = None
        spec = {"holderIdentity": self.identity, "leaseDurationSeconds": int(self.lease_duration),
                "acquireTime": _micro_time(now), "renewTime": _micro_time(now), "leaseTransitions": 0}
        if lease is None:
            self.client.create(self.collection, {"metadata": {"name": self.name}, "spec": spec})
        else:
            current = lease.get("spec") or {}
            if current.get("holderIdentity") == self.identity:
                spec["acquireTime"] = current.get("acquireTime", spec["acquireTime"])
                spec["leaseTransitions"] = current.get("leaseTransitions", 0)
            else:
                renewed = current.get("renewTime")
                duration = current.get("leaseDurationSeconds") or self.lease_duration
                if current.get("holderIdentity") and renewed and \
                        _parse_micro_time(renewed) + datetime.timedelta(seconds=duration) > now:
                    return False
                spec["leaseTransitions"] = current.get("leaseTransitions", 0) + 1
            lease["spec"] = spec
            self.client.update(self.path, lease)
        self._renewed_at = time.monotonic()
        return True

    def step(self):
        try:
            return self.try_acquire_or_renew()
        except (ApiError, OSError):
            return False


# -- the process --------------------------------------------------------------------------------

def self_signed_context(common_name):
    """The serving certificate the real components make for themselves when given none (openssl CLI,
    so the process need not load the cryptography library for it)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tmp = tempfile.mkdtemp(prefix="sim-serving-")
    try:
        cert, key = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
        if shutil.which("openssl"):
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-nodes", "-keyout", key, "-out", cert, "-days", "365", "-subj",
                            f"/CN={common_name}@{int(time.time())}", "-addext",
                            "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                           check=True, capture_output=True)
        else:
            _self_signed_with_cryptography(common_name, cert, key)
        ctx.load_cert_chain(cert, key)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ctx


def _self_signed_with_cryptography(common_name, cert_path, key_path):
    from cryptography import x509  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives import hashes, serialization  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.asymmetric import ec  # pylint: disable=import-outside-toplevel
    from cryptography.x509.oid import NameOID  # pylint: disable=import-outside-toplevel
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=365)).sign(key, hashes.SHA256()))
    with open(cert_path, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


def serve_health(component, bind, port, paths=("/healthz", "/livez", "/readyz")):
    """HTTPS health endpoints answering ``ok`` to anyone (the real ones always allow these paths)."""
    import http.server  # pylint: disable=import-outside-toplevel

    class HealthHandler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            self.request.settimeout(10)
            self.request.do_handshake()
            super().setup()

        def log_message(self, format, *args):  # pylint: disable=redefined-builtin
            pass

        def do_GET(self):  # pylint: disable=invalid-name
            path = self.path.split("?")[0].rstrip("/")
            code, body = (200, b"ok") if path in paths else (404, b"404 page not found\n")
            self.send_response(code)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = TLSServer((bind, port), HealthHandler, self_signed_context(component))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True).start()
    return server


def leader_settings(flags):
    return (parse_go_duration(flags.get("leader-elect-lease-duration", "15s")),
            parse_go_duration(flags.get("leader-elect-renew-deadline", "10s")),
            parse_go_duration(flags.get("leader-elect-retry-period", "2s")))


def load_client(flags, component):
    path = flags.get("kubeconfig")
    if not path:
        return None
    if not os.path.exists(path):
        raise FlagError(f"stat {path}: no such file or directory")
    return Client.from_kubeconfig(path, timeout=5.0, user_agent=f"{component}/lab-sim")


def run_controllers(client, flags, stop, interval=0.5):
    controllers = enabled_controllers(flags.get("controllers"))
    signers = []

    def signer():
        # Loaded on first use: the cryptography library costs ~6 MB a process.
        if not signers:
            signers.append(Signer(flags["cluster-signing-cert-file"], flags["cluster-signing-key-file"],
                                  parse_go_duration(flags.get("cluster-signing-duration", "8760h"))))
        return signers[0]
    if "csrsigning" in controllers and not flags.get("cluster-signing-cert-file"):
        controllers.discard("csrsigning")
    leader = None
    if flags.get("leader-elect", True):
        lease, renew, retry = leader_settings(flags)
        leader = LeaderElector(client, "kube-controller-manager", f"{socket.gethostname()}_{uuid.uuid4()}",
                               lease, renew, retry)
    next_election = 0.0
    while not stop.is_set():
        if leader and time.monotonic() >= next_election:
            was_leading = leader.leading
            leader.step()
            next_election = time.monotonic() + leader.retry_period
            if leader.leading and not was_leading:
                log("leaderelection.go", f'successfully acquired lease kube-system/kube-controller-manager')
        if leader is None or leader.leading:
            now = datetime.datetime.now(datetime.timezone.utc)
            for name, action in (("tokencleaner", lambda: clean_tokens(client, now)),
                                 ("bootstrapsigner", lambda: sign_cluster_info(client, now)),
                                 ("csrapproving", lambda: approve_csrs(client)),
                                 ("csrsigning", lambda: sign_csrs(client, signer)),
                                 ("garbagecollector", lambda: collect_garbage(client))):
                if name not in controllers:
                    continue
                try:
                    result = action()
                    if result and result is not True:
                        log(f"{name}.go", f"{name}: {', '.join(result)}")
                except ApiError as exc:
                    if exc.status != 409:  # a conflict is retried on the next pass
                        log(f"{name}.go", f"{name}: {exc}", "E")
                except OSError as exc:
                    log(f"{name}.go", f"{name}: {exc}", "E")
        stop.wait(interval)


def main(argv=None, component="kube-controller-manager", value_flags=KCM_VALUE_FLAGS,
         bool_flags=KCM_BOOL_FLAGS, default_port=10257):
    argv = sys.argv[1:] if argv is None else argv
    try:
        flags = parse_flags(argv, bool_flags, value_flags, component)
        port = int(flags.get("secure-port", default_port))
        client = load_client(flags, component)
        server = serve_health(component, flags.get("bind-address", "0.0.0.0"), port)
    except (FlagError, ValueError) as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"Error: failed to create listener: {exc}\n")
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    log("serving.go", f"Serving securely on {flags.get('bind-address', '0.0.0.0')}:{port}")
    try:
        if client is None:
            stop.wait()
        elif component == "kube-controller-manager":
            run_controllers(client, flags, stop)
        else:
            run_leader_only(client, flags, stop, component)
    except KeyboardInterrupt:
        pass
    server.shutdown()
    return 0


def run_leader_only(client, flags, stop, component):
    """The scheduler: holds its lease (nothing to schedule in the lab)."""
    if not flags.get("leader-elect", True):
        stop.wait()
        return
    lease, renew, retry = leader_settings(flags)
    leader = LeaderElector(client, component, f"{socket.gethostname()}_{uuid.uuid4()}", lease, renew, retry)
    while not stop.is_set():
        was_leading = leader.leading
        leader.step()
        if leader.leading and not was_leading:
            log("leaderelection.go", f"successfully acquired lease kube-system/{component}")
        stop.wait(retry)


if __name__ == "__main__":
    sys.exit(main())
