"""Static Pod manifests in kubeadm's shape (reference §3): etcd and the three control plane components."""

import os

import yaml

from lab.sim import pki
from lab.sim.kubeadm import paths as P
from lab.sim.kubeadm.certs import url_host

# etcd image tag kubeadm pins per Kubernetes minor.
ETCD_TAGS = {29: "3.5.10-0", 30: "3.5.12-0", 31: "3.5.15-0", 32: "3.5.16-0", 33: "3.5.21-0",
             34: "3.6.4-0", 35: "3.6.5-0", 36: "3.6.6-0"}


def _image(cluster, name, tag):
    return f"{cluster.get('imageRepository') or 'registry.k8s.io'}/{name}:{tag}"


def _args(command, defaults, extra):
    """kubeadm's argument builder: defaults overridden by extraArgs, sorted by flag name."""
    merged = dict(defaults)
    for item in extra or []:
        merged[item["name"]] = item["value"]
    return [command] + [f"--{name}={value}" for name, value in sorted(merged.items())]


def _host_path(name, path, path_type):
    return {"hostPath": {"path": path, "type": path_type}, "name": name}


def _mount(name, path, read_only):
    mount = {"mountPath": path, "name": name}
    if read_only:
        mount["readOnly"] = True
    return mount


def _probe(host, port, path, scheme, failure, initial=10):
    return {
        "failureThreshold": failure,
        "httpGet": {"host": host, "path": path, "port": port, "scheme": scheme},
        "initialDelaySeconds": initial, "periodSeconds": 10, "timeoutSeconds": 15,
    }


def _pod(name, container, volumes, annotations=None, version=None):
    metadata = {"labels": {"component": name, "tier": "control-plane"}, "name": name,
                "namespace": "kube-system"}
    if annotations:
        metadata["annotations"] = annotations
    if version is not None and version < (1, 33):
        metadata["creationTimestamp"] = None
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": metadata,
        "spec": {
            "containers": [container], "hostNetwork": True, "priority": 2000001000,
            "priorityClassName": "system-node-critical",
            "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": volumes,
        },
        "status": {},
    }


def _pki_volumes(cert_dir):
    volumes = [
        _host_path("ca-certs", "/etc/ssl/certs", "DirectoryOrCreate"),
        _host_path("etc-ca-certificates", "/etc/ca-certificates", "DirectoryOrCreate"),
        _host_path("k8s-certs", cert_dir, "DirectoryOrCreate"),
    ]
    mounts = [_mount("ca-certs", "/etc/ssl/certs", True),
              _mount("etc-ca-certificates", "/etc/ca-certificates", True),
              _mount("k8s-certs", cert_dir, True)]
    return volumes, mounts


def apiserver(cluster, advertise_address, bind_port, version):
    cert_dir = cluster["certificatesDir"]
    defaults = {
        "advertise-address": advertise_address,
        "allow-privileged": "true",
        "authorization-mode": "Node,RBAC",
        "client-ca-file": f"{cert_dir}/ca.crt",
        "enable-admission-plugins": "NodeRestriction",
        "enable-bootstrap-token-auth": "true",
        "etcd-cafile": f"{cert_dir}/etcd/ca.crt",
        "etcd-certfile": f"{cert_dir}/apiserver-etcd-client.crt",
        "etcd-keyfile": f"{cert_dir}/apiserver-etcd-client.key",
        "etcd-servers": "https://127.0.0.1:2379",
        "kubelet-client-certificate": f"{cert_dir}/apiserver-kubelet-client.crt",
        "kubelet-client-key": f"{cert_dir}/apiserver-kubelet-client.key",
        "kubelet-preferred-address-types": "InternalIP,ExternalIP,Hostname",
        "proxy-client-cert-file": f"{cert_dir}/front-proxy-client.crt",
        "proxy-client-key-file": f"{cert_dir}/front-proxy-client.key",
        "requestheader-allowed-names": "front-proxy-client",
        "requestheader-client-ca-file": f"{cert_dir}/front-proxy-ca.crt",
        "requestheader-extra-headers-prefix": "X-Remote-Extra-",
        "requestheader-group-headers": "X-Remote-Group",
        "requestheader-username-headers": "X-Remote-User",
        "secure-port": str(bind_port),
        "service-account-issuer": f"https://kubernetes.default.svc.{cluster['networking']['dnsDomain']}",
        "service-account-key-file": f"{cert_dir}/sa.pub",
        "service-account-signing-key-file": f"{cert_dir}/sa.key",
        "service-cluster-ip-range": cluster["networking"]["serviceSubnet"],
        "tls-cert-file": f"{cert_dir}/apiserver.crt",
        "tls-private-key-file": f"{cert_dir}/apiserver.key",
    }
    volumes, mounts = _pki_volumes(cert_dir)
    host = advertise_address
    container = {
        "command": _args("kube-apiserver", defaults, cluster["apiServer"].get("extraArgs")),
        "image": _image(cluster, "kube-apiserver", str(version)),
        "imagePullPolicy": "IfNotPresent",
        "livenessProbe": _probe(host, bind_port, "/livez", "HTTPS", 8),
        "name": "kube-apiserver",
        "readinessProbe": {**_probe(host, bind_port, "/readyz", "HTTPS", 3, initial=None), "periodSeconds": 1},
        "resources": {"requests": {"cpu": "250m"}},
        "startupProbe": _probe(host, bind_port, "/livez", "HTTPS", 24),
        "volumeMounts": mounts,
    }
    container["readinessProbe"].pop("initialDelaySeconds")
    annotations = {"kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint":
                   f"{url_host(advertise_address)}:{bind_port}"}
    return _pod("kube-apiserver", container, volumes, annotations, version)


def controller_manager(cluster, version):
    cert_dir = cluster["certificatesDir"]
    conf = f"{P.KUBERNETES_DIR}/controller-manager.conf"
    defaults = {
        "authentication-kubeconfig": conf,
        "authorization-kubeconfig": conf,
        "bind-address": "127.0.0.1",
        "client-ca-file": f"{cert_dir}/ca.crt",
        "cluster-name": cluster.get("clusterName", "kubernetes"),
        "cluster-signing-cert-file": f"{cert_dir}/ca.crt",
        "cluster-signing-key-file": f"{cert_dir}/ca.key",
        "controllers": "*,bootstrapsigner,tokencleaner",
        "kubeconfig": conf,
        "leader-elect": "true",
        "requestheader-client-ca-file": f"{cert_dir}/front-proxy-ca.crt",
        "root-ca-file": f"{cert_dir}/ca.crt",
        "service-account-private-key-file": f"{cert_dir}/sa.key",
        "use-service-account-credentials": "true",
    }
    pod_subnet = cluster["networking"].get("podSubnet")
    if pod_subnet:
        defaults["allocate-node-cidrs"] = "true"
        defaults["cluster-cidr"] = pod_subnet
        defaults["service-cluster-ip-range"] = cluster["networking"]["serviceSubnet"]
    volumes, mounts = _pki_volumes(cert_dir)
    volumes.append(_host_path("kubeconfig", conf, "FileOrCreate"))
    mounts.append(_mount("kubeconfig", conf, True))
    container = {
        "command": _args("kube-controller-manager", defaults, cluster["controllerManager"].get("extraArgs")),
        "image": _image(cluster, "kube-controller-manager", str(version)),
        "imagePullPolicy": "IfNotPresent",
        "livenessProbe": _probe("127.0.0.1", 10257, "/healthz", "HTTPS", 8),
        "name": "kube-controller-manager",
        "resources": {"requests": {"cpu": "200m"}},
        "startupProbe": _probe("127.0.0.1", 10257, "/healthz", "HTTPS", 24),
        "volumeMounts": mounts,
    }
    return _pod("kube-controller-manager", container, volumes, version=version)


def scheduler(cluster, version):
    conf = f"{P.KUBERNETES_DIR}/scheduler.conf"
    defaults = {
        "authentication-kubeconfig": conf,
        "authorization-kubeconfig": conf,
        "bind-address": "127.0.0.1",
        "kubeconfig": conf,
        "leader-elect": "true",
    }
    container = {
        "command": _args("kube-scheduler", defaults, cluster["scheduler"].get("extraArgs")),
        "image": _image(cluster, "kube-scheduler", str(version)),
        "imagePullPolicy": "IfNotPresent",
        "livenessProbe": _probe("127.0.0.1", 10259, "/livez", "HTTPS", 8),
        "name": "kube-scheduler",
        "readinessProbe": {"failureThreshold": 3, "httpGet": {"host": "127.0.0.1", "path": "/readyz",
                           "port": 10259, "scheme": "HTTPS"}, "periodSeconds": 1, "timeoutSeconds": 15},
        "resources": {"requests": {"cpu": "100m"}},
        "startupProbe": _probe("127.0.0.1", 10259, "/livez", "HTTPS", 24),
        "volumeMounts": [_mount("kubeconfig", conf, True)],
    }
    return _pod("kube-scheduler", container, [_host_path("kubeconfig", conf, "FileOrCreate")], version=version)


def etcd(cluster, node_name, advertise_address, version, initial_cluster=None):
    """The local etcd member; ``initial_cluster`` [(name, peer URL)] for a joining member."""
    cert_dir = cluster["certificatesDir"]
    local = cluster["etcd"]["local"]
    data_dir = local.get("dataDir", P.ETCD_DATA_DIR)
    host = url_host(advertise_address)
    peer_url = f"https://{host}:2380"
    defaults = {
        "advertise-client-urls": f"https://{host}:2379",
        "cert-file": f"{cert_dir}/etcd/server.crt",
        "client-cert-auth": "true",
        "data-dir": data_dir,
        "initial-advertise-peer-urls": peer_url,
        "initial-cluster": f"{node_name}={peer_url}",
        "key-file": f"{cert_dir}/etcd/server.key",
        "listen-client-urls": f"https://127.0.0.1:2379,https://{host}:2379",
        "listen-metrics-urls": "http://127.0.0.1:2381",
        "listen-peer-urls": peer_url,
        "name": node_name,
        "peer-cert-file": f"{cert_dir}/etcd/peer.crt",
        "peer-client-cert-auth": "true",
        "peer-key-file": f"{cert_dir}/etcd/peer.key",
        "peer-trusted-ca-file": f"{cert_dir}/etcd/ca.crt",
        "snapshot-count": "10000",
        "trusted-ca-file": f"{cert_dir}/etcd/ca.crt",
    }
    if version >= (1, 34):  # etcd 3.6 spellings
        defaults["feature-gates"] = "InitialCorruptCheck=true"
        defaults["watch-progress-notify-interval"] = "5s"
    else:
        defaults["experimental-initial-corrupt-check"] = "true"
        defaults["experimental-watch-progress-notify-interval"] = "5s"
    if initial_cluster:
        defaults["initial-cluster"] = ",".join(f"{name}={url}" for name, url in initial_cluster)
        defaults["initial-cluster-state"] = "existing"
    tag = ETCD_TAGS.get(version.minor, ETCD_TAGS[36])
    container = {
        "command": _args("etcd", defaults, local.get("extraArgs")),
        "image": _image(cluster, "etcd", tag),
        "imagePullPolicy": "IfNotPresent",
        "livenessProbe": _probe("127.0.0.1", 2381, "/livez" if version >= (1, 32) else "/health?exclude=NOSPACE&serializable=true", "HTTP", 8),
        "name": "etcd",
        "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}},
        "startupProbe": _probe("127.0.0.1", 2381, "/readyz" if version >= (1, 32) else "/health?serializable=false", "HTTP", 24),
        "volumeMounts": [_mount("etcd-data", data_dir, False), _mount("etcd-certs", f"{cert_dir}/etcd", False)],
    }
    volumes = [_host_path("etcd-certs", f"{cert_dir}/etcd", "DirectoryOrCreate"),
               _host_path("etcd-data", data_dir, "DirectoryOrCreate")]
    annotations = {"kubeadm.kubernetes.io/etcd.advertise-client-urls": f"https://{host}:2379"}
    return _pod("etcd", container, volumes, annotations, version)


def write(paths, name, pod):
    """WriteStaticPodToDisk: directory 0700 if missing, file 0600."""
    directory = paths(P.MANIFESTS_DIR)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    pki.write_file(paths.manifest(name), yaml.safe_dump(pod, default_flow_style=False, sort_keys=True),
                   0o600, dir_mode=0o700)
