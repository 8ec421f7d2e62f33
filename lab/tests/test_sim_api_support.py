"""Helpers of the simulator's API/etcd/kcm tests (no tests here): a throwaway PKI, free ports,
a real etcd with TLS client-certificate auth, the simulated API server as a subprocess of
Debian's /usr/bin/python3. Everything lives under the test's tmp_path; only our own PIDs are killed."""

import datetime
import ipaddress
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # pytest.ini sets no pythonpath; the simulator is imported as lab.sim
    sys.path.insert(0, str(REPO))
SYSTEM_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
ETCD = "/usr/bin/etcd"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class CA:
    def __init__(self, common_name="kubernetes"):
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.utcnow()
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(minutes=5))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM)
        self.key_pem = _pem_key(self.key)

    def issue(self, common_name, orgs=(), dns=(), ips=(), server=False, client=True):
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.utcnow()
        attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + \
                 ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
        builder = (x509.CertificateBuilder().subject_name(x509.Name(attrs))
                   .issuer_name(self.cert.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.ExtendedKeyUsage(usages), critical=False))
        sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def write(path, data, mode=0o600):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return str(path)


def wait_for(predicate, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:  # pylint: disable=broad-except
            pass
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


class Proc:
    """A child process we started; stop() kills only it."""

    def __init__(self, args, log_path, env=None):
        self.log_path = str(log_path)
        self.log = open(self.log_path, "wb")  # pylint: disable=consider-using-with
        self.popen = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                      cwd=str(REPO))  # pylint: disable=consider-using-with

    def stop(self):
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self.log.close()

    def output(self):
        return Path(self.log_path).read_text(errors="replace")


class EtcdServer:
    """A one-member etcd 3.4 with TLS and client-certificate auth, like kubeadm's stacked etcd."""

    def __init__(self, base, start=True):
        self.dir = Path(base) / "etcd"
        self.ca = CA("etcd-ca")
        pki = self.dir / "pki"
        server_cert, server_key = self.ca.issue("etcd", dns=["localhost"], ips=["127.0.0.1"], server=True)
        client_cert, client_key = self.ca.issue("kube-apiserver-etcd-client", orgs=["system:masters"])
        self.ca_file = write(pki / "ca.crt", self.ca.cert_pem, 0o644)
        self.server_cert = write(pki / "server.crt", server_cert, 0o644)
        self.server_key = write(pki / "server.key", server_key)
        self.cert_file = write(pki / "client.crt", client_cert, 0o644)
        self.key_file = write(pki / "client.key", client_key)
        self.client_port, self.peer_port = free_port(), free_port()
        self.endpoint = f"https://127.0.0.1:{self.client_port}"
        self.proc = None
        if start:
            self.start()

    def start(self):
        peer = f"http://127.0.0.1:{self.peer_port}"
        self.proc = Proc([ETCD, "--name=sim", f"--data-dir={self.dir / 'data'}",
                          f"--listen-client-urls={self.endpoint}", f"--advertise-client-urls={self.endpoint}",
                          f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
                          f"--initial-cluster=sim={peer}", "--client-cert-auth=true",
                          f"--trusted-ca-file={self.ca_file}", f"--cert-file={self.server_cert}",
                          f"--key-file={self.server_key}", "--snapshot-count=10000"],
                         self.dir / "etcd.log")

    def client(self, **kwargs):
        from lab.sim.etcd import Etcd  # pylint: disable=import-outside-toplevel
        return Etcd([self.endpoint], self.ca_file, self.cert_file, self.key_file, **kwargs)

    def wait_ready(self):
        client = self.client(timeout=1.0)
        wait_for(lambda: client.health(), 15, what=f"etcd ready\n{self.proc.output()}")
        client.close()

    def stop(self):
        if self.proc:
            self.proc.stop()


def sim_config(base, version="1.32.4", time_scale=1.0):
    path = Path(base) / "sim-config.json"
    path.write_text(json.dumps({"kubernetes_version": version, "time_scale": time_scale}))
    return str(path)


class ApiServerProc:
    """The simulated kube-apiserver, run by Debian's python3 with the flags of kubeadm's manifest."""

    def __init__(self, base, etcd, version="1.32.4", time_scale=1.0, extra_flags=(), etcd_servers=None):
        self.dir = Path(base) / f"apiserver-{free_port()}"
        self.dir.mkdir(parents=True)
        self.ca = CA("kubernetes")
        cert, key = self.ca.issue("kube-apiserver", dns=["kubernetes", "localhost"],
                                  ips=["127.0.0.1", "10.96.0.1"], server=True, client=False)
        pki = self.dir / "pki"
        self.ca_file = write(pki / "ca.crt", self.ca.cert_pem, 0o644)
        sa_key = ec.generate_private_key(ec.SECP256R1())
        self.port = free_port()
        self.server = f"https://127.0.0.1:{self.port}"
        self.flags = [
            "kube-apiserver", "--advertise-address=127.0.0.1", "--allow-privileged=true",
            "--authorization-mode=Node,RBAC", f"--client-ca-file={self.ca_file}",
            "--enable-admission-plugins=NodeRestriction", "--enable-bootstrap-token-auth=true",
            f"--etcd-cafile={etcd.ca_file}", f"--etcd-certfile={etcd.cert_file}",
            f"--etcd-keyfile={etcd.key_file}", f"--etcd-servers={etcd_servers or etcd.endpoint}",
            "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
            "--requestheader-allowed-names=front-proxy-client", "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            "--requestheader-group-headers=X-Remote-Group", "--requestheader-username-headers=X-Remote-User",
            f"--secure-port={self.port}", "--bind-address=127.0.0.1",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={write(pki / 'sa.pub', sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo), 0o644)}",
            f"--service-account-signing-key-file={write(pki / 'sa.key', _pem_key(sa_key))}",
            "--service-cluster-ip-range=10.96.0.0/12",
            f"--tls-cert-file={write(pki / 'apiserver.crt', cert, 0o644)}",
            f"--tls-private-key-file={write(pki / 'apiserver.key', key)}",
        ] + list(extra_flags)
        self.env = dict(os.environ, LAB_SIM_CONFIG=sim_config(self.dir, version, time_scale),
                        PYTHONPATH=str(REPO))
        self.proc = Proc([SYSTEM_PYTHON, "-m", "lab.sim.apiserver"] + self.flags[1:],
                         self.dir / "apiserver.log", self.env)

    def client(self, user=None, groups=(), token=None, anonymous=False, **kwargs):
        from lab.sim.k8sclient import Client  # pylint: disable=import-outside-toplevel
        if anonymous or token:
            return Client(self.server, ca_pem=self.ca.cert_pem, token=token, **kwargs)
        cert, key = self.ca.issue(user or "kubernetes-admin", orgs=groups or ["system:masters"])
        return Client(self.server, ca_pem=self.ca.cert_pem, cert_pem=cert, key_pem=key, **kwargs)

    def wait_ready(self, timeout=15):
        client = self.client(anonymous=True, timeout=2)
        wait_for(lambda: client.request("GET", "/readyz", raw=True) == b"ok", timeout,
                 what=f"apiserver ready\n{self.proc.output()}")

    def stop(self):
        self.proc.stop()
