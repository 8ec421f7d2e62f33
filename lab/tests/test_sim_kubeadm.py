"""Unit tests of the kubeadm stand-in: no namespaces, a temporary root directory, a fake host."""

import base64
import io
import os
import re
import stat

import pytest
import yaml

from lab.sim import kubeconfig, pki
from lab.sim.config import SimConfig, Version
from lab.sim.kubeadm import apiconfig, cli, copycerts, errors, output, preflight, tokens
from lab.sim.kubeadm.paths import Paths
from lab.sim.kubeadm.runtime import Runtime

VIP = "198.51.100.254"
NODE_IP = "198.51.100.11"


class FakeHost:
    """The node facts kubeadm looks at, set by each test."""

    def __init__(self):
        self.root = True
        self.busy_ports = set()
        self.missing = set()
        self.kubelet_enabled = True
        self.systemctl_calls = []

    def is_root(self):
        return self.root

    def port_in_use(self, port):
        return port in self.busy_ports

    def which(self, binary):
        return None if binary in self.missing else f"/usr/bin/{binary}"

    def service_enabled(self, name):
        return self.kubelet_enabled

    def systemctl(self, *args, quiet=False):
        self.systemctl_calls.append(args)
        self.last_systemctl_error = ""
        return 0

    def hostname(self):
        return "cp1"

    def default_address(self):
        return NODE_IP

    def resolve(self, name):
        raise OSError(name)


@pytest.fixture
def node(tmp_path):
    os.makedirs(tmp_path / "proc/sys/net/ipv4")
    (tmp_path / "proc/sys/net/ipv4/ip_forward").write_text("1\n")
    return tmp_path


def run(root, argv, version="1.32.4", host=None, scale=1e-4, stdin=""):
    host = host or FakeHost()
    out, err = io.StringIO(), io.StringIO()
    rt = Runtime(SimConfig(Version.parse(version), scale), Paths(str(root)), host, out, err, io.StringIO(stdin))
    rc = cli.main(argv, rt)
    return rc, out.getvalue(), err.getvalue()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# -- flags and config files ------------------------------------------------------------------------


@pytest.mark.parametrize("argv,message", [
    (["init", "--bogus"], "unknown flag: --bogus"),
    (["join", "--control-plane-endpoint", "x"], "unknown flag: --control-plane-endpoint"),
    (["reset", "-x"], "unknown shorthand flag: 'x' in -x"),
    (["init", "--config"], "flag needs an argument: --config"),
    (["init", "--token-ttl", "soon"], 'invalid argument "soon" for "--token-ttl" flag: time: invalid duration "soon"'),
    (["init", "--config", "c.yaml", "--control-plane-endpoint", "vip:6443", "--pod-network-cidr", "10.244.0.0/16"],
     "can not mix '--config' with arguments [control-plane-endpoint pod-network-cidr]"),
    (["frobnicate"], 'unknown command "frobnicate" for "kubeadm"'),
])
def test_bad_command_lines_fail_like_cobra(node, argv, message):
    rc, out, err = run(node, argv)
    assert rc == 1
    assert err == f"{message}\n{errors.STACK_TRACE_HINT}\n"


def test_errors_carry_the_error_prefix_from_1_34(node):
    rc, _out, err = run(node, ["init", "--bogus"], version="1.34.2")
    assert rc == 1
    assert err.startswith("error: unknown flag: --bogus\n")


def _write(root, text):
    path = os.path.join(root, "kubeadm.yaml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


CLUSTER_V1BETA3 = """apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
kubernetesVersion: v1.30.2
controlPlaneEndpoint: 198.51.100.254:6443
"""
CLUSTER_V1BETA4 = CLUSTER_V1BETA3.replace("v1beta3", "v1beta4")


def test_config_validate_accepts_v1beta3_on_1_30(node):
    rc, out, err = run(node, ["config", "validate", "--config", _write(node, CLUSTER_V1BETA3)], version="1.30.2")
    assert (rc, out, err) == (0, "ok\n", "")


def test_v1beta4_is_unknown_before_1_31(node):
    rc, _out, err = run(node, ["config", "validate", "--config", _write(node, CLUSTER_V1BETA4)], version="1.30.2")
    assert rc == 1
    assert err.startswith('no kind "ClusterConfiguration" is registered for version "kubeadm.k8s.io/v1beta4" '
                          'in scheme "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/scheme/scheme.go:31"\n')


def test_v1beta3_is_deprecated_from_1_31(node):
    rc, out, err = run(node, ["config", "validate", "--config", _write(node, CLUSTER_V1BETA3)], version="1.31.0")
    assert rc == 0 and out == "ok\n"
    assert 'your configuration file uses a deprecated API spec: "kubeadm.k8s.io/v1beta3"' in err


def test_unknown_field_is_a_strict_decoding_error(node):
    text = CLUSTER_V1BETA4 + "networking:\n  podSubnets: 10.244.0.0/16\n"
    rc, _out, err = run(node, ["config", "validate", "--config", _write(node, text)], version="1.32.4")
    assert rc == 1
    assert err.splitlines()[0] == (
        'error unmarshaling configuration schema.GroupVersionKind{Group:"kubeadm.k8s.io", Version:"v1beta4", '
        'Kind:"ClusterConfiguration"}: strict decoding error: unknown field "networking.podSubnets"')


def test_v1beta3_map_extra_args_are_rejected_in_v1beta4(node):
    text = CLUSTER_V1BETA4 + "apiServer:\n  extraArgs:\n    audit-log-path: /tmp/a\n"
    rc, _out, err = run(node, ["config", "validate", "--config", _write(node, text)], version="1.32.4")
    assert rc == 1
    assert "json: cannot unmarshal object into Go struct field apiServer.extraArgs of type list" in err


def test_join_configuration_needs_ca_pinning_or_unsafe_skip(node):
    text = """apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: 198.51.100.254:6443
    token: abcdef.0123456789abcdef
"""
    rc, _out, err = run(node, ["config", "validate", "--config", _write(node, text)])
    assert rc == 1
    assert "using token-based discovery without caCertHashes can be unsafe" in err


def test_kubernetes_version_older_than_the_skew_is_rejected(node):
    rc, _out, err = run(node, ["init", "--kubernetes-version", "v1.30.0"], version="1.32.4")
    assert rc == 1
    assert err.startswith("this version of kubeadm only supports deploying clusters with the control plane "
                          "version >= 1.31.0. Current version: v1.30.0\n")


def test_invalid_token_and_endpoint_are_reported_together(node):
    rc, _out, err = run(node, ["init", "--token", "ABC", "--control-plane-endpoint", "vip:99999"])
    assert rc == 1
    first = err.splitlines()[0]
    assert first.startswith("[bootstrapTokens[0].token: Invalid value: \"ABC\": the bootstrap token is invalid, ")
    assert 'controlPlaneEndpoint: Invalid value: "vip:99999"' in first


# -- preflight -------------------------------------------------------------------------------------


def test_preflight_errors_are_collected_in_order_with_tabs(node):
    host = FakeHost()
    host.busy_ports = {6443, 2379}
    os.makedirs(node / "etc/kubernetes/manifests")
    (node / "etc/kubernetes/manifests/etcd.yaml").write_text("x")
    (node / "etc/kubernetes/manifests/kube-vip.yaml").write_text("x")  # foreign files are fine
    (node / "proc/sys/net/ipv4/ip_forward").write_text("0\n")
    rc, out, err = run(node, ["init"], host=host)
    assert rc == 1
    assert out.endswith("[preflight] Running pre-flight checks\n")
    assert err.endswith(
        "error execution phase preflight: [preflight] Some fatal errors occurred:\n"
        "\t[ERROR Port-6443]: Port 6443 is in use\n"
        "\t[ERROR FileAvailable--etc-kubernetes-manifests-etcd.yaml]: /etc/kubernetes/manifests/etcd.yaml already exists\n"
        "\t[ERROR FileContent--proc-sys-net-ipv4-ip_forward]: /proc/sys/net/ipv4/ip_forward contents are not set to 1\n"
        "\t[ERROR Port-2379]: Port 2379 is in use\n"
        "[preflight] If you know what you are doing, you can make a check non-fatal with "
        "`--ignore-preflight-errors=...`\n"
        f"{errors.STACK_TRACE_HINT}\n")


def test_preflight_block_goes_first_and_short_error_last_from_1_34(node):
    host = FakeHost()
    host.busy_ports = {6443}
    rc, _out, err = run(node, ["init"], host=host, version="1.34.2")
    assert rc == 1
    assert "[preflight] Some fatal errors occurred:\n\t[ERROR Port-6443]: Port 6443 is in use\n" in err
    assert err.endswith("error: error execution phase preflight: preflight checks failed\n"
                        f"{errors.STACK_TRACE_HINT}\n")


def test_ignored_errors_become_warnings_case_insensitively(node):
    host = FakeHost()
    host.busy_ports = {6443}
    host.kubelet_enabled = False
    rc, _out, err = run(node, ["init", "--ignore-preflight-errors=port-6443"], host=host, scale=1e-5)
    assert "\t[WARNING Port-6443]: Port 6443 is in use\n" in err
    assert "\t[WARNING Service-Kubelet]: kubelet service is not enabled" in err
    assert "phase preflight" not in err and rc == 1  # it fails later, waiting for a kubelet


def test_all_with_names_is_refused(node):
    rc, _out, err = run(node, ["init", "--ignore-preflight-errors=all,Port-6443"])
    assert rc == 1
    assert err.endswith('ignore-preflight-errors: Invalid value: "all,port-6443": '
                        "don't specify individual checks if 'all' is used\n" + errors.STACK_TRACE_HINT + "\n")


def test_missing_binaries_and_conntrack_before_1_32(node):
    host = FakeHost()
    host.missing = {"iptables", "conntrack", "socat"}
    _rc, _out, err = run(node, ["init"], host=host, version="1.31.1")
    assert "\t[ERROR FileExisting-iptables]: iptables not found in system path\n" in err
    assert "\t[ERROR FileExisting-conntrack]: conntrack not found in system path\n" in err
    assert "\t[WARNING FileExisting-socat]: socat not found in system path\n" in err
    _rc, _out, err = run(node, ["init"], host=host, version="1.32.4")
    assert "FileExisting-conntrack" not in err and "[ERROR FileExisting-iptables]" in err


def test_non_root_fails_first_and_alone(node):
    host = FakeHost()
    host.root = False
    host.busy_ports = {6443}
    _rc, _out, err = run(node, ["init"], host=host)
    assert "\t[ERROR IsPrivilegedUser]: user is not running as root\n" in err
    assert "Port-6443" not in err


def test_worker_join_rerun_fails_on_kubelet_conf_and_ca(node):
    os.makedirs(node / "etc/kubernetes/pki")
    (node / "etc/kubernetes/kubelet.conf").write_text("x")
    (node / "etc/kubernetes/pki/ca.crt").write_text("x")
    host = FakeHost()
    host.busy_ports = {10250}
    rc, _out, err = run(node, ["join", f"{VIP}:6443", "--token", "abcdef.0123456789abcdef",
                               "--discovery-token-unsafe-skip-ca-verification"], host=host)
    assert rc == 1
    names = re.findall(r"\[ERROR ([^\]]+)\]", err)
    assert names == ["FileAvailable--etc-kubernetes-kubelet.conf", "Port-10250",
                     "FileAvailable--etc-kubernetes-pki-ca.crt"]


def test_join_without_answering_endpoint_times_out_in_discovery(node):
    rc, _out, err = run(node, ["join", "127.0.0.1:1", "--token", "abcdef.0123456789abcdef",
                               "--discovery-token-ca-cert-hash", "sha256:" + "0" * 64], scale=1e-5)
    assert rc == 1
    assert err.startswith("error execution phase preflight: couldn't validate the identity of the API Server: "
                          'Get "https://127.0.0.1:1/api/v1/namespaces/kube-public/configmaps/cluster-info?timeout=10s": '
                          "dial tcp 127.0.0.1:1: connect: connection refused\n")


# -- init up to the wait, files, PKI ----------------------------------------------------------------


@pytest.fixture(scope="module")
def initialized(tmp_path_factory):
    """One init on 1.32 that writes everything, then fails waiting for a kubelet that does not exist."""
    root = tmp_path_factory.mktemp("init")
    os.makedirs(root / "proc/sys/net/ipv4")
    (root / "proc/sys/net/ipv4/ip_forward").write_text("1\n")
    host = FakeHost()
    rc, out, err = run(root, ["init", "--control-plane-endpoint", f"{VIP}:6443", "--upload-certs",
                              "--apiserver-cert-extra-sans", "api.example.test,203.0.113.7"], host=host)
    return root, host, rc, out, err


def test_init_without_kubelet_fails_in_wait_control_plane(initialized):
    _root, host, rc, out, err = initialized
    assert rc == 1
    assert ("restart", "kubelet") in host.systemctl_calls
    assert "[kubelet-check] Waiting for a healthy kubelet at http://127.0.0.1:10248/healthz. This can take up to 4m0s\n" in out
    assert err.splitlines()[-2].startswith(
        "error execution phase wait-control-plane: failed while waiting for the kubelet to start")


def test_init_writes_files_with_kubeadms_modes(initialized):
    root = initialized[0]
    expected = {
        "etc/kubernetes/pki/ca.crt": 0o644, "etc/kubernetes/pki/ca.key": 0o600,
        "etc/kubernetes/pki/sa.key": 0o600, "etc/kubernetes/pki/sa.pub": 0o600,
        "etc/kubernetes/pki/etcd/peer.crt": 0o644, "etc/kubernetes/pki/front-proxy-client.key": 0o600,
        "etc/kubernetes/admin.conf": 0o600, "etc/kubernetes/super-admin.conf": 0o600,
        "etc/kubernetes/kubelet.conf": 0o600, "etc/kubernetes/scheduler.conf": 0o600,
        "etc/kubernetes/manifests/etcd.yaml": 0o600, "etc/kubernetes/manifests/kube-apiserver.yaml": 0o600,
        "etc/kubernetes/manifests": 0o700,
    }
    assert {path: mode(root / path) for path in expected} == expected


def test_apiserver_certificate_sans(initialized):
    root = initialized[0]
    cert = pki.load_cert((root / "etc/kubernetes/pki/apiserver.crt").read_bytes())
    assert pki.san_dns_names(cert) == ["cp1", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                                       "kubernetes.default.svc.cluster.local", "api.example.test"]
    assert pki.san_ip_addresses(cert) == ["10.96.0.1", NODE_IP, VIP, "203.0.113.7"]
    ca = pki.load_cert((root / "etc/kubernetes/pki/ca.crt").read_bytes())
    assert cert.issuer == ca.subject


def _user_cert(path):
    creds = kubeconfig.load_credentials(str(path))
    cert = pki.load_cert(creds.cert_pem)
    subject = {attr.oid._name: attr.value for attr in cert.subject}
    orgs = [attr.value for attr in cert.subject if attr.oid._name == "organizationName"]
    return creds.server, subject["commonName"], orgs


def test_kubeconfigs_servers_and_identities(initialized):
    k = initialized[0] / "etc/kubernetes"
    assert _user_cert(k / "admin.conf") == (f"https://{VIP}:6443", "kubernetes-admin", ["kubeadm:cluster-admins"])
    assert _user_cert(k / "super-admin.conf") == (f"https://{VIP}:6443", "kubernetes-super-admin", ["system:masters"])
    assert _user_cert(k / "kubelet.conf") == (f"https://{VIP}:6443", "system:node:cp1", ["system:nodes"])
    assert _user_cert(k / "controller-manager.conf") == (
        f"https://{NODE_IP}:6443", "system:kube-controller-manager", [])
    assert _user_cert(k / "scheduler.conf")[0] == f"https://{NODE_IP}:6443"


def test_static_pod_manifests_have_kubeadms_shape(initialized):
    root = initialized[0]
    api = yaml.safe_load((root / "etc/kubernetes/manifests/kube-apiserver.yaml").read_text())
    command = api["spec"]["containers"][0]["command"]
    assert command[0] == "kube-apiserver" and command[1:] == sorted(command[1:])
    assert f"--advertise-address={NODE_IP}" in command and "--secure-port=6443" in command
    assert api["spec"]["containers"][0]["image"] == "registry.k8s.io/kube-apiserver:v1.32.4"
    etcd = yaml.safe_load((root / "etc/kubernetes/manifests/etcd.yaml").read_text())
    etcd_command = etcd["spec"]["containers"][0]["command"]
    assert f"--initial-cluster=cp1=https://{NODE_IP}:2380" in etcd_command
    assert "--experimental-watch-progress-notify-interval=5s" in etcd_command


def test_kubeconfig_file_for_super_admin_only_from_1_29(node):
    from lab.sim.kubeadm import certs
    assert certs.init_kubeconfig_files(Version(1, 29)) == [
        "admin.conf", "super-admin.conf", "kubelet.conf", "controller-manager.conf", "scheduler.conf"]
    assert "super-admin.conf" not in certs.init_kubeconfig_files(Version(1, 28))


def test_second_init_without_reset_fails_in_preflight(initialized):
    root = initialized[0]
    host = FakeHost()
    host.busy_ports = {6443, 10259, 10257, 10250, 2379, 2380}
    os.makedirs(root / "var/lib/etcd/member", exist_ok=True)
    rc, _out, err = run(root, ["init"], host=host)
    assert rc == 1
    assert re.findall(r"\[ERROR ([^\]]+)\]", err) == [
        "Port-6443", "Port-10259", "Port-10257",
        "FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml",
        "FileAvailable--etc-kubernetes-manifests-kube-controller-manager.yaml",
        "FileAvailable--etc-kubernetes-manifests-kube-scheduler.yaml",
        "FileAvailable--etc-kubernetes-manifests-etcd.yaml",
        "Port-10250", "Port-2379", "Port-2380", "DirAvailable--var-lib-etcd"]


def test_ca_hash_is_sha256_of_the_subject_public_key_info():
    from cryptography.hazmat.primitives import serialization
    import hashlib
    cert, _key = pki.new_ca("kubernetes")
    der = cert.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    assert pki.ca_cert_hash(cert) == "sha256:" + hashlib.sha256(der).hexdigest()
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", pki.ca_cert_hash(cert))


# -- tokens, certificate key, templates ------------------------------------------------------------


def test_tokens_and_certificate_keys_have_kubeadms_format():
    for _ in range(20):
        assert re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", tokens.new_token())
        assert re.fullmatch(r"[0-9a-f]{64}", tokens.new_certificate_key())


def test_token_secret_carries_scaled_expiration():
    import datetime
    now = datetime.datetime(2026, 11, 26, 9, 0, tzinfo=datetime.timezone.utc)
    secret = tokens.token_secret("abcdef.0123456789abcdef", 86400 * 0.5, groups=["g"], now=now)
    data = tokens.decode_secret_data(secret)
    assert secret["metadata"]["name"] == "bootstrap-token-abcdef"
    assert secret["type"] == "bootstrap.kubernetes.io/token"
    assert data == {"token-id": "abcdef", "token-secret": "0123456789abcdef", "expiration": "2026-11-26T21:00:00Z",
                    "usage-bootstrap-signing": "true", "usage-bootstrap-authentication": "true",
                    "auth-extra-groups": "g"}


def test_certificate_key_round_trip_and_wrong_key():
    key_hex = tokens.new_certificate_key()
    owner = {"metadata": {"name": "bootstrap-token-xyz123", "uid": "u-1"}}
    files = {"ca.crt": b"CA", "etcd/ca.key": b"KEY"}
    secret = copycerts.build_secret(files, copycerts.decode_key(key_hex), owner)
    assert set(secret["data"]) == {"ca.crt", "etcd-ca.key"}
    assert base64.b64decode(secret["data"]["ca.crt"]) != b"CA"
    assert secret["metadata"]["ownerReferences"][0]["name"] == "bootstrap-token-xyz123"
    assert copycerts.open_secret(secret, copycerts.decode_key(key_hex)) == files
    with pytest.raises(errors.KubeadmError, match="message authentication failed"):
        copycerts.open_secret(secret, copycerts.decode_key(tokens.new_certificate_key()))


HASH = "sha256:" + "a" * 64
KEY = "b" * 64


def test_join_command_templates():
    worker = output.join_command("vip:6443", "abcdef.0123456789abcdef", [HASH])
    assert worker == f"kubeadm join vip:6443 --token abcdef.0123456789abcdef \\\n\t--discovery-token-ca-cert-hash {HASH} "
    cp = output.join_command("vip:6443", "abcdef.0123456789abcdef", [HASH], True, KEY)
    assert cp.endswith(f"{HASH} \\\n\t--control-plane --certificate-key {KEY}")
    assert output.one_line(cp) == (f"kubeadm join vip:6443 --token abcdef.0123456789abcdef "
                                   f"--discovery-token-ca-cert-hash {HASH} --control-plane --certificate-key {KEY}")


def test_init_final_block_indents_the_control_plane_command_only():
    text = output.init_success("vip:6443", "abcdef.0123456789abcdef", [HASH], True, KEY, True)
    assert f"  kubeadm join vip:6443 --token abcdef.0123456789abcdef \\\n\t--discovery-token-ca-cert-hash {HASH} \\\n\t--control-plane --certificate-key {KEY}\n" in text
    assert text.endswith(f"on each as root:\n\nkubeadm join vip:6443 --token abcdef.0123456789abcdef \\\n"
                         f"\t--discovery-token-ca-cert-hash {HASH} \n")
    without_endpoint = output.init_success("10.0.0.1:6443", "abcdef.0123456789abcdef", [HASH], False, "", False)
    assert "--control-plane" not in without_endpoint


# -- reset -----------------------------------------------------------------------------------------


def test_reset_without_force_asks_and_aborts(node):
    rc, out, err = run(node, ["reset"], stdin="n\n")
    assert rc == 1
    assert out.endswith("[reset] Are you sure you want to proceed? [y/N]: ")
    assert "aborted reset operation\n" in err


def test_reset_deletes_kubeadms_files(node):
    k = node / "etc/kubernetes"
    os.makedirs(k / "pki/etcd")
    os.makedirs(k / "manifests")
    os.makedirs(node / "var/lib/kubelet/pki")
    for name in ("admin.conf", "super-admin.conf", "kubelet.conf", "pki/ca.crt", "manifests/kube-vip.yaml"):
        (k / name).write_text("x")
    (k / "keep.txt").write_text("x")
    (node / "var/lib/kubelet/config.yaml").write_text("x")
    host = FakeHost()
    rc, out, _err = run(node, ["reset", "-f"], host=host)
    assert rc == 0
    assert ("stop", "kubelet") in host.systemctl_calls
    assert ("[reset] Deleting contents of directories: [/etc/kubernetes/manifests /var/lib/kubelet "
            "/etc/kubernetes/pki]\n") in out
    assert ("[reset] Deleting files: [/etc/kubernetes/admin.conf /etc/kubernetes/super-admin.conf "
            "/etc/kubernetes/kubelet.conf /etc/kubernetes/bootstrap-kubelet.conf "
            "/etc/kubernetes/controller-manager.conf /etc/kubernetes/scheduler.conf]\n") in out
    assert sorted(os.listdir(k)) == ["keep.txt", "manifests", "pki"]
    assert os.listdir(k / "manifests") == [] and os.listdir(k / "pki") == []
    assert os.listdir(node / "var/lib/kubelet") == []
    assert "Please, check the contents of the $HOME/.kube/config file.\n" in out


def test_version_outputs():
    assert run("/nonexistent", ["version", "-o", "short"], version="1.33.1")[1] == "v1.33.1\n"
    assert yaml.safe_load(run("/nonexistent", ["version", "-o", "yaml"])[1])["clientVersion"]["gitVersion"] == "v1.32.4"
