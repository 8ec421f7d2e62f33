"""Shared simulator modules: config, Go-like durations, kubeconfig files, bootstrap-token JWS, client errors."""

import base64
import hashlib
import hmac
import json

import pytest

from test_sim_api_support import CA, free_port
from lab.sim import config, jws, kubeconfig
from lab.sim.k8sclient import ApiError, Client, TransportError, _status_from_body


def test_version_parse_compare_and_format():
    version = config.Version.parse("v1.32.4")
    assert str(version) == "v1.32.4" and version.minor == 32
    assert version >= (1, 29) and version < (1, 33)
    assert config.Version.parse("1.29") >= (1, 29)
    assert config.Version.parse("v1.36.0-alpha.1") == (1, 36, 0)
    with pytest.raises(ValueError, match='could not parse "1.x"'):
        config.Version.parse("1.x")


def test_load_reads_the_named_file_and_scales(tmp_path, monkeypatch):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"kubernetes_version": "1.29.1", "time_scale": 0.01}))
    monkeypatch.setenv(config.CONFIG_ENV, str(path))
    loaded = config.load()
    assert loaded.kubernetes_version == (1, 29, 1)
    assert loaded.scaled(7200) == pytest.approx(72.0)
    path.write_text(json.dumps({"kubernetes_version": "1.29.1", "speed": 2}))
    with pytest.raises(ValueError, match="unknown simulator settings: speed"):
        config.load()
    monkeypatch.setenv(config.CONFIG_ENV, str(tmp_path / "missing.json"))
    with pytest.raises(FileNotFoundError):
        config.load()


@pytest.mark.parametrize("seconds,text", [(10, "10s"), (240, "4m0s"), (86400, "24h0m0s"), (0.5, "500ms"),
                                          (240.001976302, "4m0.001976302s"), (0, "0s")])
def test_go_duration(seconds, text):
    assert config.go_duration(seconds) == text


def test_kubeconfig_round_trip_in_kubeadm_shape(tmp_path):
    ca = CA()
    cert, key = ca.issue("kubernetes-admin", orgs=["kubeadm:cluster-admins"])
    data = kubeconfig.build("https://198.51.100.100:6443", "kubernetes-admin", ca.cert_pem, cert, key)
    path = tmp_path / "admin.conf"
    kubeconfig.write(str(path), data)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    loaded = kubeconfig.load(str(path))
    assert loaded["current-context"] == "kubernetes-admin@kubernetes"
    creds = kubeconfig.credentials(loaded, str(path))
    assert (creds.server, creds.ca_pem, creds.cert_pem, creds.key_pem) == \
        ("https://198.51.100.100:6443", ca.cert_pem, cert, key)
    assert creds.user_name == "kubernetes-admin"


def test_kubeconfig_reads_file_references_relative_to_itself(tmp_path):
    (tmp_path / "ca.crt").write_bytes(b"CA")
    path = tmp_path / "k.conf"
    path.write_text("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                    "clusters: [{name: k, cluster: {server: 'https://h:6443', certificate-authority: ca.crt}}]\n"
                    "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
                    "users: [{name: u, user: {token: abcdef.0123456789abcdef}}]\n")
    creds = kubeconfig.load_credentials(str(path))
    assert creds.ca_pem == b"CA" and creds.token == "abcdef.0123456789abcdef"


def test_jws_is_a_detached_hs256_over_header_and_content():
    content = "apiVersion: v1\nkind: Config\n"
    token = jws.sign(content, "abcdef", "0123456789abcdef")
    header, payload, signature = token.split(".")
    assert payload == ""
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "HS256", "kid": "abcdef"}
    b64 = base64.urlsafe_b64encode(content.encode()).rstrip(b"=").decode()
    expected = hmac.new(b"0123456789abcdef", f"{header}.{b64}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(signature + "=") == expected
    assert jws.verify(token, content, "abcdef", "0123456789abcdef")
    assert not jws.verify(token, content, "abcdef", "0123456789abcdeX")
    assert not jws.verify(token, content + " ", "abcdef", "0123456789abcdef")
    assert not jws.verify("garbage", content, "abcdef", "0123456789abcdef")


def test_transport_error_reads_like_go():
    port = free_port()
    client = Client(f"https://127.0.0.1:{port}", insecure=True, timeout=10)
    with pytest.raises(TransportError) as err:
        client.get("/livez")
    assert str(err.value) == (f'Get "https://127.0.0.1:{port}/livez?timeout=10s": '
                              f"dial tcp 127.0.0.1:{port}: connect: connection refused")
    assert isinstance(err.value, OSError)


def test_api_error_from_status_and_from_plain_text():
    status = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403,
                         "reason": "Forbidden", "message": 'secrets "x" is forbidden: no'}).encode()
    err = _status_from_body(403, "Forbidden", status)
    assert isinstance(err, ApiError) and (err.status, err.reason, str(err)) == \
        (403, "Forbidden", 'secrets "x" is forbidden: no')
    plain = _status_from_body(500, "Internal Server Error", b"[-]etcd failed\n")
    assert plain.status == 500 and "[-]etcd failed" in str(plain)


def test_client_rejects_a_non_https_server():
    with pytest.raises(ValueError, match="must be an https:// URL"):
        Client("http://127.0.0.1:1")
