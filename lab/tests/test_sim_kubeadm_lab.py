"""kubeadm's failure paths run for real inside a lab node (the happy path is the bootstrap test's)."""

import re

import pytest

pytestmark = pytest.mark.lab

UNANSWERED_VIP = "198.51.100.30:6443"  # an address of no node: nothing holds it


def test_init_failures_in_a_node(lab_factory):
    lab = lab_factory(control_planes=1, kubernetes_version="1.32.4", time_scale=0.01)
    first = lab.exec("cp1", ["kubeadm", "init", "--control-plane-endpoint", UNANSWERED_VIP], check=False)
    assert first.returncode == 1
    assert ("\t[ERROR FileContent--proc-sys-net-ipv4-ip_forward]: /proc/sys/net/ipv4/ip_forward contents "
            "are not set to 1\n") in first.stderr
    assert "[certs]" not in first.stdout  # nothing written when preflight fails

    lab.exec("cp1", ["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    # <= 1.32 waits for the API through the control plane endpoint: without a VIP, init times out.
    second = lab.exec("cp1", ["kubeadm", "init", "--control-plane-endpoint", UNANSWERED_VIP, "--upload-certs"],
                      check=False, timeout=120)
    assert second.returncode == 1
    assert "[kubelet-check] The kubelet is healthy after" in second.stdout
    assert "[api-check] The API server is not healthy after" in second.stdout
    assert second.stderr.endswith("error execution phase wait-control-plane: could not initialize a Kubernetes "
                                  "cluster: context deadline exceeded\n"
                                  "To see the stack trace of this error execute with --v=5 or higher\n")

    # Re-run without reset: preflight lists what the first run left (§7.2).
    third = lab.exec("cp1", ["kubeadm", "init", "--control-plane-endpoint", UNANSWERED_VIP], check=False)
    assert third.returncode == 1
    names = re.findall(r"\[ERROR ([^\]]+)\]", third.stderr)
    assert "FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml" in names
    assert "Port-6443" in names  # the API server the kubelet started holds it

    reset = lab.exec("cp1", ["kubeadm", "reset", "-f"], check=False, timeout=120)
    assert reset.returncode == 0, reset.stderr
    left = lab.exec("cp1", ["ls", "-A", "/etc/kubernetes/manifests", "/etc/kubernetes/pki"]).stdout
    assert left.split() == ["/etc/kubernetes/manifests:", "/etc/kubernetes/pki:"]
