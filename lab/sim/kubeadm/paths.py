"""Every absolute path kubeadm touches, relative to one root so that tests can use a temporary directory."""

import os

KUBERNETES_DIR = "/etc/kubernetes"
PKI_DIR = "/etc/kubernetes/pki"
MANIFESTS_DIR = "/etc/kubernetes/manifests"
KUBELET_DIR = "/var/lib/kubelet"
ETCD_DATA_DIR = "/var/lib/etcd"
ADMIN_CONF = "/etc/kubernetes/admin.conf"
SUPER_ADMIN_CONF = "/etc/kubernetes/super-admin.conf"
KUBELET_CONF = "/etc/kubernetes/kubelet.conf"
BOOTSTRAP_KUBELET_CONF = "/etc/kubernetes/bootstrap-kubelet.conf"
CONTROLLER_MANAGER_CONF = "/etc/kubernetes/controller-manager.conf"
SCHEDULER_CONF = "/etc/kubernetes/scheduler.conf"
KUBELET_CONFIG = "/var/lib/kubelet/config.yaml"
KUBELET_INSTANCE_CONFIG = "/var/lib/kubelet/instance-config.yaml"
KUBELET_FLAGS_ENV = "/var/lib/kubelet/kubeadm-flags.env"
KUBELET_CLIENT_CURRENT = "/var/lib/kubelet/pki/kubelet-client-current.pem"
IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"

STATIC_POD_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")


class Paths:
    """Maps kubeadm's absolute paths under ``root`` (``/`` in a lab node, a temporary dir in tests)."""

    def __init__(self, root="/"):
        self.root = root

    def __call__(self, absolute):
        if self.root in ("", "/"):
            return absolute
        return os.path.join(self.root, absolute.lstrip("/"))

    def manifest(self, component):
        return self(f"{MANIFESTS_DIR}/{component}.yaml")

    def pki(self, name):
        return self(f"{PKI_DIR}/{name}")
