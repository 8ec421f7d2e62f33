# -*- coding: utf-8 -*-
"""node_prep decisions: version and platform refusals, pause image per minor, repositories,
containerd source and the pinned package specs."""

import os
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.path.insert(0, os.path.join(REPO, ".collections"))

from ansible_collections.vipadm.kubeadm.plugins.module_utils._node_prep import (  # noqa: E402
    NodePrepError,
    cni_bin_dir,
    containerd_1_support,
    parse_kubernetes_version,
    parse_os_release,
    plan,
    platform_of,
)

DEBIAN_12 = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"""
UBUNTU_2204 = 'NAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\n'
UBUNTU_2404 = 'NAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\nID_LIKE=debian\nPRETTY_NAME="Ubuntu 24.04.1 LTS"\n'
ROCKY_94 = 'NAME="Rocky Linux"\nVERSION_ID="9.4"\nID="rocky"\nID_LIKE="rhel centos fedora"\n'
RHEL_95 = 'NAME="Red Hat Enterprise Linux"\nVERSION_ID="9.5"\nID="rhel"\nID_LIKE="fedora"\n'
ALMA_9 = 'NAME="AlmaLinux"\nVERSION_ID="9.3"\nID="almalinux"\nID_LIKE="rhel centos fedora"\n'
CENTOS_STREAM_9 = 'NAME="CentOS Stream"\nVERSION_ID="9"\nID="centos"\nID_LIKE="rhel fedora"\n'
ORACLE_9 = 'NAME="Oracle Linux Server"\nVERSION_ID="9.4"\nID="ol"\nID_LIKE="fedora"\n'
# Derivatives that say they are like RHEL are accepted on the same terms.
EUROLINUX_9 = 'NAME="EuroLinux"\nVERSION_ID="9.2"\nID="eurolinux"\nID_LIKE="rhel fedora centos"\n'


# kubeadm's constants.PauseVersion per release branch (release-1.29 .. release-1.36).
@pytest.mark.parametrize(
    "version, image",
    [
        ("1.29.15", "registry.k8s.io/pause:3.9"),
        ("1.30.0", "registry.k8s.io/pause:3.9"),
        ("1.31.4", "registry.k8s.io/pause:3.10"),
        ("1.32.4", "registry.k8s.io/pause:3.10"),
        ("1.33.1", "registry.k8s.io/pause:3.10"),
        ("1.34.2", "registry.k8s.io/pause:3.10.1"),
        ("1.35.0", "registry.k8s.io/pause:3.10.1"),
        ("1.36.3", "registry.k8s.io/pause:3.10.2"),
    ],
)
def test_pause_image_is_the_one_kubeadm_of_that_minor_expects(version, image):
    assert plan(version, DEBIAN_12)["pause_image"] == image


def test_pause_image_follows_the_image_repository_and_an_override_wins():
    assert plan("1.32.4", DEBIAN_12, image_repository="mirror.example:5000/k8s/")["pause_image"] == (
        "mirror.example:5000/k8s/pause:3.10"
    )
    assert plan("1.32.4", DEBIAN_12, pause_image_override="local/pause:x")["pause_image"] == "local/pause:x"


@pytest.mark.parametrize("text, expected", [("1.32.4", (1, 32, 4)), ("v1.29.0", (1, 29, 0)), (" 1.36.10 ", (1, 36, 10))])
def test_versions_are_accepted_with_or_without_v(text, expected):
    assert parse_kubernetes_version(text) == expected


@pytest.mark.parametrize("text", ["1.32", "latest", "", None, "1.32.4-rc.1", "stable-1.32"])
def test_a_version_that_is_not_a_release_is_refused_with_what_to_set(text):
    with pytest.raises(NodePrepError) as refused:
        parse_kubernetes_version(text)
    assert "vipadm_kubernetes_version" in str(refused.value)
    assert "1.32.4" in str(refused.value)  # shows the expected form


@pytest.mark.parametrize("text", ["1.28.15", "1.38.0", "2.0.0", "0.32.1"])
def test_a_version_outside_1_29_to_1_36_is_refused(text):
    with pytest.raises(NodePrepError) as refused:
        parse_kubernetes_version(text)
    message = str(refused.value)
    assert text in message and "1.29 to 1.37" in message


def test_os_release_parsing_strips_quotes_and_ignores_comments():
    fields = parse_os_release('# comment\n\nID="rocky"\nVERSION_ID=\'9.4\'\nNAME=Rocky Linux\nBROKEN\n')
    assert fields == {"ID": "rocky", "VERSION_ID": "9.4", "NAME": "Rocky Linux"}


@pytest.mark.parametrize(
    "text, family, manager, codename",
    [
        (DEBIAN_12, "debian", "apt", "bookworm"),
        (UBUNTU_2204, "debian", "apt", "jammy"),
        (UBUNTU_2404, "debian", "apt", "noble"),
        (ROCKY_94, "redhat", "dnf", ""),
        (RHEL_95, "redhat", "dnf", ""),
        (ALMA_9, "redhat", "dnf", ""),
        (CENTOS_STREAM_9, "redhat", "dnf", ""),
        (ORACLE_9, "redhat", "dnf", ""),
        (EUROLINUX_9, "redhat", "dnf", ""),
    ],
)
def test_supported_platforms(text, family, manager, codename):
    platform = platform_of(parse_os_release(text))
    assert (platform["family"], platform["package_manager"], platform["codename"]) == (family, manager, codename)


@pytest.mark.parametrize(
    "text, shown",
    [
        ('PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nID=debian\nVERSION_ID="11"\n', "Debian GNU/Linux 11 (bullseye)"),
        ('PRETTY_NAME="Ubuntu 20.04.6 LTS"\nID=ubuntu\nVERSION_ID="20.04"\n', "Ubuntu 20.04.6 LTS"),
        ('ID="rocky"\nVERSION_ID="8.9"\nID_LIKE="rhel centos fedora"\n', "rocky 8.9"),
        ('PRETTY_NAME="Fedora Linux 40"\nID=fedora\nVERSION_ID=40\n', "Fedora Linux 40"),
        ("", "unknown"),
    ],
)
def test_unsupported_platforms_are_refused_naming_the_platform_and_the_supported_ones(text, shown):
    with pytest.raises(NodePrepError) as refused:
        plan("1.32.4", text)
    message = str(refused.value)
    assert shown in message
    assert "Debian 12" in message and "Ubuntu 22.04 or 24.04" in message and "RHEL-family 9" in message


def test_debian_family_repository_packages_and_distribution_containerd():
    result = plan("1.32.4", DEBIAN_12)
    assert result["kubernetes_version"] == "1.32.4" and result["kubernetes_minor"] == "1.32"
    assert result["package_manager"] == "apt"
    assert result["kubernetes_repository"] == {
        "url": "https://pkgs.k8s.io/core:/stable:/v1.32/deb/",
        "key_url": "https://pkgs.k8s.io/core:/stable:/v1.32/deb/Release.key",
    }
    assert result["kubernetes_packages"] == ["kubelet=1.32.4-*", "kubeadm=1.32.4-*", "kubectl=1.32.4-*"]
    assert result["held_packages"] == ["kubelet", "kubeadm", "kubectl"]
    assert (result["containerd_source"], result["containerd_package"]) == ("distribution", "containerd")
    assert result["containerd_repository"] is None


def test_redhat_family_uses_dnf_the_rpm_repository_and_docker_containerd():
    result = plan("v1.30.2", ROCKY_94)
    assert result["kubernetes_version"] == "1.30.2"
    assert result["kubernetes_repository"] == {
        "url": "https://pkgs.k8s.io/core:/stable:/v1.30/rpm/",
        "key_url": "https://pkgs.k8s.io/core:/stable:/v1.30/rpm/repodata/repomd.xml.key",
    }
    assert result["kubernetes_packages"] == ["kubelet-1.30.2", "kubeadm-1.30.2", "kubectl-1.30.2"]
    assert (result["containerd_source"], result["containerd_package"]) == ("docker", "containerd.io")
    assert result["containerd_repository"] == {
        "url": "https://download.docker.com/linux/centos/$releasever/$basearch/stable",
        "key_url": "https://download.docker.com/linux/centos/gpg",
        "suite": "",
        "component": "",
    }


def test_kubernetes_1_36_takes_containerd_2_from_docker_on_debian_and_ubuntu():
    result = plan("1.36.0", UBUNTU_2404)
    assert result["containerd_source"] == "docker"
    assert result["containerd_repository"] == {
        "url": "https://download.docker.com/linux/ubuntu",
        "key_url": "https://download.docker.com/linux/ubuntu/gpg",
        "suite": "noble",
        "component": "stable",
    }
    assert plan("1.35.9", UBUNTU_2404)["containerd_source"] == "distribution"


# Measured on the real binaries: kubelet 1.36 and 1.37 run on containerd 1.6.20 (the kubelet warns that the
# runtime lacks the CRI RuntimeConfig call and uses its own cgroupDriver); upstream removes that fallback in 1.38.
@pytest.mark.parametrize(
    "minor, support", [(29, "full"), (35, "full"), (36, "fallback"), (37, "fallback"), (38, "none"), (40, "none")]
)
def test_containerd_1_is_refused_only_from_kubernetes_1_38(minor, support):
    assert containerd_1_support(minor) == support


def test_the_plan_says_how_the_version_runs_on_containerd_1():
    assert plan("1.35.2", DEBIAN_12)["containerd_1_support"] == "full"
    assert plan("1.36.3", DEBIAN_12)["containerd_1_support"] == "fallback"
    # A 1.36 node may keep the distribution's containerd 1.x when asked.
    assert plan("1.36.3", DEBIAN_12, containerd_source_override="distribution")["containerd_source"] == "distribution"


def test_the_cni_plugin_directory_is_containerd_s_default_unless_given():
    assert plan("1.32.4", DEBIAN_12)["cni_bin_dir"] == "/opt/cni/bin"
    assert plan("1.32.4", DEBIAN_12, cni_bin_dir_override="/usr/lib/cni/")["cni_bin_dir"] == "/usr/lib/cni"
    assert cni_bin_dir("") == cni_bin_dir(None) == "/opt/cni/bin"


@pytest.mark.parametrize("path", ["usr/lib/cni", "./cni", "~/cni"])
def test_a_relative_cni_plugin_directory_is_refused_with_what_to_set(path):
    with pytest.raises(NodePrepError) as refused:
        plan("1.32.4", DEBIAN_12, cni_bin_dir_override=path)
    assert str(refused.value) == (
        "node_prep_cni_bin_dir is %r, which is not an absolute path: set it to the directory that holds the CNI "
        "plugin binaries, such as /opt/cni/bin or /usr/lib/cni (Debian's and Ubuntu's containernetworking-plugins)."
        % path
    )


def test_mirror_urls_replace_the_public_repositories():
    result = plan(
        "1.33.2",
        DEBIAN_12,
        kubernetes_repository_url="http://198.51.100.1:8080/k8s/v1.33/deb",
        containerd_source_override="docker",
        containerd_repository_url="http://mirror.example/docker/linux/debian/",
    )
    assert result["kubernetes_repository"] == {
        "url": "http://198.51.100.1:8080/k8s/v1.33/deb/",
        "key_url": "http://198.51.100.1:8080/k8s/v1.33/deb/Release.key",
    }
    assert result["containerd_repository"]["url"] == "http://mirror.example/docker/linux/debian"
    assert result["containerd_repository"]["key_url"] == "http://mirror.example/docker/linux/debian/gpg"
    assert result["containerd_repository"]["suite"] == "bookworm"


def test_distribution_containerd_is_refused_on_redhat_and_unknown_sources_are_refused():
    with pytest.raises(NodePrepError) as refused:
        plan("1.32.4", ALMA_9, containerd_source_override="distribution")
    assert "no containerd package" in str(refused.value) and "docker" in str(refused.value)
    with pytest.raises(NodePrepError) as refused:
        plan("1.32.4", DEBIAN_12, containerd_source_override="snap")
    assert "node_prep_containerd_source" in str(refused.value)


def test_the_version_is_checked_before_the_platform():
    # Both wrong: the user sees the version first (it is the same fix for every node).
    with pytest.raises(NodePrepError) as refused:
        plan("1.28.0", "ID=fedora\nVERSION_ID=40\n")
    assert "1.28.0" in str(refused.value)
