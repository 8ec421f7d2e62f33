"""The cluster PKI and kubeconfig files kubeadm writes (reference §3), under a :class:`Paths` root."""

import ipaddress
import os

from lab.sim import kubeconfig, pki
from lab.sim.kubeadm import paths as P
from lab.sim.kubeadm.apiconfig import split_host_port

CLUSTER_ADMINS_GROUP = "kubeadm:cluster-admins"
MASTERS_GROUP = "system:masters"

# Certificate authorities, shared by all control planes (and uploaded in kubeadm-certs).
CA_NAMES = {"ca": "kubernetes", "front-proxy-ca": "front-proxy-ca", "etcd/ca": "etcd-ca"}
# The files of Secret kubeadm-certs (secret key = file name with "/" -> "-").
SHARED_FILES = ("ca.crt", "ca.key", "sa.key", "sa.pub", "front-proxy-ca.crt", "front-proxy-ca.key",
                "etcd/ca.crt", "etcd/ca.key")


def first_service_ip(service_subnet):
    network = ipaddress.ip_network(service_subnet.split(",")[0].strip(), strict=False)
    return str(network.network_address + 1)


def url_host(host):
    return f"[{host}]" if ":" in host else host


def control_plane_url(cluster, advertise_address, bind_port):
    """``https://host:port`` of the cluster: the controlPlaneEndpoint, else the local API endpoint."""
    endpoint = cluster.get("controlPlaneEndpoint") or ""
    if endpoint:
        host, port = split_host_port(endpoint, bind_port)
        return f"https://{url_host(host)}:{port}"
    return f"https://{url_host(advertise_address)}:{bind_port}"


def apiserver_alt_names(node_name, advertise_address, cluster):
    dns_domain = cluster["networking"]["dnsDomain"]
    dns = [node_name, "kubernetes", "kubernetes.default", "kubernetes.default.svc",
           f"kubernetes.default.svc.{dns_domain}"]
    ips = [first_service_ip(cluster["networking"]["serviceSubnet"]), advertise_address]
    endpoint = cluster.get("controlPlaneEndpoint") or ""
    if endpoint:
        host, _port = split_host_port(endpoint, 6443)
        (ips if _is_ip(host) else dns).append(host)
    for san in cluster["apiServer"].get("certSANs") or []:
        (ips if _is_ip(san) else dns).append(san)
    return _unique(dns), _unique(ips)


def etcd_alt_names(node_name, advertise_address, extra):
    dns = [node_name, "localhost"]
    ips = [advertise_address, "127.0.0.1", "::1"]
    for san in extra or []:
        (ips if _is_ip(san) else dns).append(san)
    return _unique(dns), _unique(ips)


def _is_ip(text):
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _unique(items):
    out = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


class Pki:
    """Reads and writes the certificate directory (``certificatesDir``) of one node."""

    def __init__(self, paths, cert_dir=P.PKI_DIR):
        self.paths = paths
        self.cert_dir = cert_dir

    def file(self, name):
        return self.paths(f"{self.cert_dir}/{name}")

    def exists(self, name):
        return os.path.exists(self.file(f"{name}.crt")) and os.path.exists(self.file(f"{name}.key"))

    def load(self, name):
        with open(self.file(f"{name}.crt"), "rb") as crt, open(self.file(f"{name}.key"), "rb") as key:
            return pki.load_cert(crt.read()), pki.load_key(key.read())

    def save(self, name, cert, key):
        pki.write_cert(self.file(f"{name}.crt"), cert)
        pki.write_key(self.file(f"{name}.key"), key)

    def read_bytes(self, name):
        with open(self.file(name), "rb") as handle:
            return handle.read()

    def write_bytes(self, name, data):
        mode = 0o644 if name.endswith(".crt") else 0o600
        pki.write_file(self.file(name), data, mode)


def create_certificates(store, node_name, advertise_address, cluster, version, say, secondary=False):
    """The certs phase: CAs (unless ``secondary``: they come from kubeadm-certs), leaf certs, sa keys."""
    say(f'[certs] Using certificateDir folder "{store.cert_dir}"')
    dns, ips = apiserver_alt_names(node_name, advertise_address, cluster)
    local_etcd = (cluster.get("etcd") or {}).get("local") or {}
    admins_group = CLUSTER_ADMINS_GROUP if version >= (1, 29) else MASTERS_GROUP

    def ca(name):
        if store.exists(name):
            return store.load(name)
        cert, key = pki.new_ca(CA_NAMES[name])
        say(f'[certs] Generating "{name}" certificate and key')
        store.save(name, cert, key)
        return cert, key

    def leaf(name, ca_pair, common_name, organizations=(), usages=(pki.CLIENT,), dns_names=(), ip_list=()):
        cert, key = pki.new_signed_cert(ca_pair[0], ca_pair[1], common_name, organizations, usages,
                                        dns_names, ip_list)
        say(f'[certs] Generating "{name}" certificate and key')
        if pki.SERVER in usages:
            say(f"[certs] {name} serving cert is signed for DNS names [{' '.join(dns_names)}] "
                f"and IPs [{' '.join(ip_list)}]")
        store.save(name, cert, key)

    cluster_ca = ca("ca")
    leaf("apiserver", cluster_ca, "kube-apiserver", (), (pki.SERVER,), dns, ips)
    leaf("apiserver-kubelet-client", cluster_ca, "kube-apiserver-kubelet-client", (admins_group,))
    front_ca = ca("front-proxy-ca")
    leaf("front-proxy-client", front_ca, "front-proxy-client")
    etcd_ca = ca("etcd/ca")
    e_dns, e_ips = etcd_alt_names(node_name, advertise_address, local_etcd.get("serverCertSANs"))
    leaf("etcd/server", etcd_ca, node_name, (), (pki.SERVER, pki.CLIENT), e_dns, e_ips)
    p_dns, p_ips = etcd_alt_names(node_name, advertise_address, local_etcd.get("peerCertSANs"))
    leaf("etcd/peer", etcd_ca, node_name, (), (pki.SERVER, pki.CLIENT), p_dns, p_ips)
    leaf("etcd/healthcheck-client", etcd_ca, "kube-etcd-healthcheck-client")
    leaf("apiserver-etcd-client", etcd_ca, "kube-apiserver-etcd-client")
    if os.path.exists(store.file("sa.key")):
        if secondary:
            say(f'[certs] Valid certificates and keys now exist in "{store.cert_dir}"')
        say('[certs] Using the existing "sa" key')
    else:
        key = pki.new_private_key()
        say('[certs] Generating "sa" key and public key')
        pki.write_key(store.file("sa.key"), key)
        pki.write_public_key(store.file("sa.pub"), key)


def write_kubeconfig(paths, store, name, server, common_name, organizations=(), cluster_name="kubernetes"):
    ca_cert, ca_key = store.load("ca")
    cert, key = pki.new_signed_cert(ca_cert, ca_key, common_name, organizations, (pki.CLIENT,))
    config = kubeconfig.build(server, common_name, pki.cert_pem(ca_cert), pki.cert_pem(cert),
                              pki.key_pem(key), cluster_name=cluster_name)
    target = paths(f"{P.KUBERNETES_DIR}/{name}")
    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
    kubeconfig.write(target, config, mode=0o600)


def create_kubeconfigs(paths, store, node_name, advertise_address, bind_port, cluster, version, say,
                       files):
    """The kubeconfig phase for ``files`` (names such as ``admin.conf``), in kubeadm's order."""
    say(f'[kubeconfig] Using kubeconfig folder "{P.KUBERNETES_DIR}"')
    endpoint = control_plane_url(cluster, advertise_address, bind_port)
    local = f"https://{url_host(advertise_address)}:{bind_port}"
    admins_group = CLUSTER_ADMINS_GROUP if version >= (1, 29) else MASTERS_GROUP
    specs = {
        "admin.conf": (endpoint, "kubernetes-admin", (admins_group,)),
        "super-admin.conf": (endpoint, "kubernetes-super-admin", (MASTERS_GROUP,)),
        "kubelet.conf": (endpoint, f"system:node:{node_name}", ("system:nodes",)),
        "controller-manager.conf": (local, "system:kube-controller-manager", ()),
        "scheduler.conf": (local, "system:kube-scheduler", ()),
    }
    for name in files:
        server, common_name, groups = specs[name]
        say(f'[kubeconfig] Writing "{name}" kubeconfig file')
        write_kubeconfig(paths, store, name, server, common_name, groups, cluster.get("clusterName", "kubernetes"))


def init_kubeconfig_files(version):
    files = ["admin.conf"]
    if version >= (1, 29):
        files.append("super-admin.conf")
    return files + ["kubelet.conf", "controller-manager.conf", "scheduler.conf"]
