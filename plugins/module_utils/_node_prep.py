# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the node_prep role installs on one node: pure functions, no host access.

``plan`` takes the cluster's Kubernetes version, the node's /etc/os-release text and the user's
overrides, and returns the package manager, the package repositories (Kubernetes and, where needed,
containerd), the pinned package specs, the pause image kubeadm expects, how that Kubernetes version runs on
containerd 1.x, the directory of the CNI plugins and the distribution packages of bundle mode. Unsupported
versions or platforms raise ``NodePrepError`` with a sentence that says what is wrong and what to do.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.vipadm.kubeadm.plugins.module_utils._versions import SUPPORTED_KUBERNETES_MINORS


# kubeadm's constants.PauseVersion per minor: the sandbox image `kubeadm config images list` names.
# Containerd must use the same one, or kubeadm warns and the kubelet pulls a second pause image.
PAUSE_VERSIONS = {
    29: "3.9",
    30: "3.9",
    31: "3.10",
    32: "3.10",
    33: "3.10",
    34: "3.10.1",
    35: "3.10.1",
    36: "3.10.2",
    37: "3.10.2",
}

# containerd 1.x lacks the CRI RuntimeConfig call. From Kubernetes 1.36 the kubelet warns about it and falls
# back to its own cgroupDriver (measured: kubelet 1.36 and 1.37 run on containerd 1.6.20); upstream removes
# that fallback in 1.38, which needs containerd 2. The distribution packages of the supported Debian/Ubuntu
# releases are 1.6/1.7, so from 1.36 on containerd comes from Docker's repository unless asked otherwise.
FIRST_MINOR_DEPRECATING_CONTAINERD_1 = 36
FIRST_MINOR_NEEDING_CONTAINERD_2 = 38

# What the CRI plugin's cni.bin_dir is when node_prep_cni_bin_dir is not given: containerd's own default,
# where pkgs.k8s.io's kubernetes-cni and the network add-ons' installers put their plugins.
DEFAULT_CNI_BIN_DIR = "/opt/cni/bin"

KUBERNETES_PACKAGES = ("kubelet", "kubeadm", "kubectl")
# Bundle mode installs no Kubernetes package, so what the kubelet and kubeadm packages depend on comes from the
# distribution instead: the commands kubeadm's preflight looks for (conntrack, ip, iptables) and those the
# kubelet runs (ethtool, socat for port-forward).
KUBERNETES_PACKAGE_DEPENDENCIES = {
    "apt": ("conntrack", "iptables", "iproute2", "ethtool", "socat"),
    "dnf": ("conntrack-tools", "iptables-nft", "iproute", "ethtool", "socat"),
}
DEFAULT_IMAGE_REPOSITORY = "registry.k8s.io"
KUBERNETES_REPOSITORY_TEMPLATE = "https://pkgs.k8s.io/core:/stable:/v1.{minor}/{format}/"
DOCKER_REPOSITORY_BASE = "https://download.docker.com/linux/{distro}"

CONTAINERD_SOURCES = ("distribution", "docker")

# Debian family: os-release ID -> {VERSION_ID: codename}; the codename names the Docker apt suite.
_DEBIAN_RELEASES = {
    "debian": {"12": "bookworm"},
    "ubuntu": {"22.04": "jammy", "24.04": "noble"},
}
_REDHAT_IDS = ("rhel", "rocky", "almalinux", "centos", "ol")
_REDHAT_MAJOR = "9"

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")


class NodePrepError(Exception):
    """A refusal: the message says what is wrong and what to do."""


def parse_kubernetes_version(text):
    """'1.32.4' or 'v1.32.4' -> (1, 32, 4); refuses anything else and minors outside the supported range."""
    match = _VERSION_RE.match(str(text).strip()) if text is not None else None
    if not match:
        raise NodePrepError(
            "vipadm_kubernetes_version is %r, which is not a Kubernetes release: set it to a full "
            "version such as 1.32.4 (the packages are pinned to it)." % (text,)
        )
    major, minor, patch = (int(part) for part in match.groups())
    low, high = SUPPORTED_KUBERNETES_MINORS
    if major != 1 or not low <= minor <= high:
        raise NodePrepError(
            "Kubernetes %d.%d.%d is not supported by node_prep: choose a version from 1.%d to 1.%d "
            "in vipadm_kubernetes_version." % (major, minor, patch, low, high)
        )
    return major, minor, patch


def parse_os_release(text):
    """The KEY=value lines of os-release(5) as a dict; quotes removed, comments and blanks ignored."""
    fields = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        fields[key.strip()] = value
    return fields


def platform_of(os_release):
    """The node's platform from parsed os-release, or a refusal naming the supported ones.

    Returns a dict: ``family`` (debian/redhat), ``id``, ``version_id``, ``codename`` (Debian
    family only), ``package_manager`` (apt/dnf), ``docker_distro`` (the Docker repository path).
    """
    os_id = os_release.get("ID", "").lower()
    version_id = os_release.get("VERSION_ID", "")
    like = os_release.get("ID_LIKE", "").lower().split()
    if os_id in _DEBIAN_RELEASES and version_id in _DEBIAN_RELEASES[os_id]:
        return {
            "family": "debian",
            "id": os_id,
            "version_id": version_id,
            "codename": _DEBIAN_RELEASES[os_id][version_id],
            "package_manager": "apt",
            "docker_distro": os_id,
        }
    redhat_like = os_id in _REDHAT_IDS or "rhel" in like
    if redhat_like and version_id.split(".")[0] == _REDHAT_MAJOR:
        return {
            "family": "redhat",
            "id": os_id,
            "version_id": version_id,
            "codename": "",
            "package_manager": "dnf",
            "docker_distro": "centos",
        }
    name = os_release.get("PRETTY_NAME") or ("%s %s" % (os_id, version_id)).strip() or "unknown"
    raise NodePrepError(
        "node_prep does not support %s: use Debian 12, Ubuntu 22.04 or 24.04, or a RHEL-family 9 "
        "release (RHEL, Rocky Linux, AlmaLinux, CentOS Stream, Oracle Linux)." % name
    )


def pause_image(minor, image_repository=DEFAULT_IMAGE_REPOSITORY):
    """The pause image kubeadm of 1.<minor> expects, from image_repository (kubeadm's imageRepository)."""
    repository = (image_repository or DEFAULT_IMAGE_REPOSITORY).rstrip("/")
    return "%s/pause:%s" % (repository, PAUSE_VERSIONS[minor])


def _with_slash(url):
    return url if url.endswith("/") else url + "/"


def kubernetes_repository(minor, package_manager, url=None):
    """Kubernetes package repository of one minor: pkgs.k8s.io, or a mirror of it at ``url``."""
    package_format = "deb" if package_manager == "apt" else "rpm"
    base = _with_slash(url) if url else KUBERNETES_REPOSITORY_TEMPLATE.format(minor=minor, format=package_format)
    key_path = "Release.key" if package_format == "deb" else "repodata/repomd.xml.key"
    return {"url": base, "key_url": base + key_path}


def containerd_source(platform, minor, requested=None):
    """Where containerd comes from: the distribution's package or Docker's ``containerd.io``."""
    if requested:
        if requested not in CONTAINERD_SOURCES:
            raise NodePrepError(
                "node_prep_containerd_source is %r: use one of %s." % (requested, ", ".join(CONTAINERD_SOURCES))
            )
        if requested == "distribution" and platform["family"] == "redhat":
            raise NodePrepError(
                "RHEL-family 9 has no containerd package of its own: leave node_prep_containerd_source "
                "unset or set it to docker."
            )
        return requested
    if platform["family"] == "redhat" or minor >= FIRST_MINOR_DEPRECATING_CONTAINERD_1:
        return "docker"
    return "distribution"


def containerd_1_support(minor):
    """How Kubernetes 1.<minor> runs on containerd 1.x, for the check of the installed containerd.

    ``full`` up to 1.35; ``fallback`` for 1.36 and 1.37 (the kubelet warns and uses its own cgroupDriver,
    which must then match containerd's); ``none`` from 1.38 (containerd 2 needed).
    """
    if minor >= FIRST_MINOR_NEEDING_CONTAINERD_2:
        return "none"
    if minor >= FIRST_MINOR_DEPRECATING_CONTAINERD_1:
        return "fallback"
    return "full"


def cni_bin_dir(path=None):
    """The directory of the CNI plugin binaries containerd runs: an absolute path, or a refusal."""
    if not path:
        return DEFAULT_CNI_BIN_DIR
    text = str(path).strip()
    if not text.startswith("/"):
        raise NodePrepError(
            "node_prep_cni_bin_dir is %r, which is not an absolute path: set it to the directory that holds "
            "the CNI plugin binaries, such as /opt/cni/bin or /usr/lib/cni (Debian's and Ubuntu's "
            "containernetworking-plugins)." % (path,)
        )
    return text.rstrip("/") or "/"


def containerd_repository(platform, source, base_url=None):
    """Docker's package repository (or a mirror of its ``linux/<distro>`` tree); None for the distribution."""
    if source != "docker":
        return None
    base = (base_url or DOCKER_REPOSITORY_BASE.format(distro=platform["docker_distro"])).rstrip("/")
    if platform["package_manager"] == "apt":
        return {"url": base, "key_url": base + "/gpg", "suite": platform["codename"], "component": "stable"}
    return {"url": base + "/$releasever/$basearch/stable", "key_url": base + "/gpg", "suite": "", "component": ""}


def kubernetes_package_specs(version, package_manager):
    """Package specs pinned to one Kubernetes release, in the syntax of the package manager module."""
    text = "%d.%d.%d" % version
    if package_manager == "apt":
        # pkgs.k8s.io Debian revisions look like 1.32.4-1.1; the wildcard accepts any rebuild.
        return ["%s=%s-*" % (name, text) for name in KUBERNETES_PACKAGES]
    return ["%s-%s" % (name, text) for name in KUBERNETES_PACKAGES]


def plan(
    kubernetes_version,
    os_release_text,
    image_repository=None,
    pause_image_override=None,
    kubernetes_repository_url=None,
    containerd_source_override=None,
    containerd_repository_url=None,
    cni_bin_dir_override=None,
):
    """Everything node_prep needs to know for one node, or NodePrepError before anything changes."""
    version = parse_kubernetes_version(kubernetes_version)
    platform = platform_of(parse_os_release(os_release_text))
    minor = version[1]
    manager = platform["package_manager"]
    source = containerd_source(platform, minor, containerd_source_override)
    cni_directory = cni_bin_dir(cni_bin_dir_override)
    containerd_package = "containerd" if source == "distribution" else "containerd.io"
    return {
        "kubernetes_version": "%d.%d.%d" % version,
        "kubernetes_minor": "1.%d" % minor,
        "platform": platform,
        "package_manager": manager,
        "pause_image": pause_image_override or pause_image(minor, image_repository),
        "kubernetes_repository": kubernetes_repository(minor, manager, kubernetes_repository_url),
        "kubernetes_packages": kubernetes_package_specs(version, manager),
        "held_packages": list(KUBERNETES_PACKAGES),
        "containerd_source": source,
        "containerd_package": containerd_package,
        "bundle_packages": [containerd_package] + list(KUBERNETES_PACKAGE_DEPENDENCIES[manager]),
        "containerd_repository": containerd_repository(platform, source, containerd_repository_url),
        "containerd_1_support": containerd_1_support(minor),
        "cni_bin_dir": cni_directory,
    }
