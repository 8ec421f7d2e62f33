# -*- coding: utf-8 -*-
"""The staged VIP probe against real HTTPS servers on 127.0.0.1 with certificates made here."""

import errno
import http.server
import os
import socket
import ssl
import sys
import tempfile
import threading

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures', 'kubeadm'))

import harness as h  # noqa: E402

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _vip_probe as probe  # noqa: E402

LOOPBACK = '127.0.0.1'


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        statuses = self.server.statuses
        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        self.server.paths.append(self.path)
        body = b'ok' if status == 200 else b'[-]etcd failed: reason withheld'
        self.send_response(status)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server:
    """An HTTPS (or plain HTTP) server on a free loopback port, answering the given statuses in turn."""

    def __init__(self, cert_pem=None, key_pem=None, statuses=(200,), handler=None, client_ca=None):
        self.httpd = http.server.ThreadingHTTPServer((LOOPBACK, 0), handler or _Handler)
        self.httpd.statuses = list(statuses)
        self.httpd.paths = []
        self.httpd.handle_error = lambda *args: None  # failed handshakes are the point of some tests
        if cert_pem:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            with tempfile.TemporaryDirectory() as directory:
                cert_file, key_file = os.path.join(directory, 'c.pem'), os.path.join(directory, 'k.pem')
                with open(cert_file, 'w') as handle:
                    handle.write(cert_pem)
                with open(key_file, 'w') as handle:
                    handle.write(key_pem)
                context.load_cert_chain(cert_file, key_file)
            if client_ca:  # ask for a client certificate of this CA; the handler decides what needs one
                context.load_verify_locations(cadata=client_ca)
                context.verify_mode = ssl.CERT_OPTIONAL
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *args):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def paths(self):
        return self.httpd.paths


@pytest.fixture(scope='module')
def pki():
    ca_pem, ca_key, _ = h.make_ca('cluster-ca')
    other_pem, other_key, _ = h.make_ca('other-ca')
    return {
        'ca': ca_pem,
        'good': h.make_server_cert(ca_key, ca_pem, ip_sans=[LOOPBACK, '10.96.0.1'], dns_sans=['kubernetes']),
        'wrong_ca': h.make_server_cert(other_key, other_pem, ip_sans=[LOOPBACK]),
        'wrong_name': h.make_server_cert(ca_key, ca_pem, ip_sans=['198.51.100.11'], dns_sans=['cp1']),
    }


def free_port():
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def test_ready_on_200(pki):
    with Server(*pki['good']) as server:
        result = probe.probe_once(LOOPBACK, server.port, probe.tls_context(pki['ca']), '/livez', 2)
    assert (result.stage, result.ok, result.status) == ('ready', True, 200)
    assert server.paths == ['/livez']


def test_refused_port():
    result = probe.probe_once(LOOPBACK, free_port(), probe.tls_context(h.make_ca('cluster-ca')[0]), '/livez', 2)
    assert (result.stage, result.ok) == ('tcp', False)
    assert result.reason.startswith('connection refused at 127.0.0.1:')


def test_unknown_ca(pki):
    with Server(*pki['wrong_ca']) as server:
        result = probe.probe_once(LOOPBACK, server.port, probe.tls_context(pki['ca']), '/livez', 2)
    assert (result.stage, result.ok) == ('tls', False)
    assert 'not signed by the given cluster CA' in result.reason
    assert server.paths == []


def test_certificate_not_valid_for_the_vip(pki):
    with Server(*pki['wrong_name']) as server:
        result = probe.probe_once(LOOPBACK, server.port, probe.tls_context(pki['ca']), '/livez', 2)
    assert (result.stage, result.ok) == ('tls', False)
    assert result.reason.startswith('TLS: the server certificate is not valid for 127.0.0.1')
    assert 'certSANs' in result.reason


def test_plain_http_is_a_tls_failure(pki):
    with Server() as server:
        result = probe.probe_once(LOOPBACK, server.port, probe.tls_context(pki['ca']), '/livez', 2)
    assert (result.stage, result.ok) == ('tls', False)
    assert result.reason.startswith('TLS handshake failed')


def test_http_500_reports_status_and_body(pki):
    with Server(*pki['good'], statuses=(500,)) as server:
        result = probe.probe_once(LOOPBACK, server.port, probe.tls_context(pki['ca']), '/readyz', 2)
    assert (result.stage, result.ok, result.status) == ('http', False, 500)
    assert 'GET /readyz returned HTTP 500' in result.reason and 'etcd failed' in result.reason


def test_wait_retries_until_ready(pki):
    with Server(*pki['good'], statuses=(500, 503, 200)) as server:
        result = probe.wait_for_vip(LOOPBACK, server.port, pki['ca'], '/livez', timeout=10, sleep=0.02)
    assert (result['ready'], result['stage'], result['attempts'], result['status']) == (True, 'ready', 3, 200)
    assert result['elapsed'] < 5


def test_wait_times_out_with_last_stage():
    result = probe.wait_for_vip(LOOPBACK, free_port(), h.make_ca('cluster-ca')[0], timeout=0.3, sleep=0.05)
    assert (result['ready'], result['stage']) == (False, 'tcp')
    assert result['attempts'] >= 2
    assert 0.2 <= result['elapsed'] < 2


def test_wait_with_fake_clock_counts_delay_and_sleeps():
    now = [100.0]
    pauses = []

    def pause(seconds):
        pauses.append(seconds)
        now[0] += seconds

    result = probe.wait_for_vip(LOOPBACK, free_port(), h.make_ca('cluster-ca')[0], timeout=10, delay=3, sleep=2,
                                clock=lambda: now[0], pause=pause)
    # delay 3, then probes at 3, 5, 7 and the last at 9 (9 + 2 >= 10 stops)
    assert pauses == [3, 2, 2, 2]
    assert (result['attempts'], result['elapsed']) == (4, 9.0)


@pytest.mark.parametrize('exc, expected', [
    (socket.timeout('timed out'), 'no answer from 198.51.100.254:6443 within 5s: no node answers for the VIP'),
    (OSError(errno.EHOSTUNREACH, 'No route to host'), 'no route to host 198.51.100.254:6443: nothing answers ARP'),
    (OSError(errno.ENETUNREACH, 'Network is unreachable'), 'network unreachable for 198.51.100.254:6443'),
])
def test_tcp_reasons_without_leaving_loopback(exc, expected):
    # these need an unreachable VIP; the words are checked on the exceptions the socket layer raises
    assert probe._tcp_reason(exc, h.VIP, 6443, 5).startswith(expected)


def test_the_last_probe_before_the_deadline_says_its_timeout_rounded():
    """Seen on real components: 'no answer from ...:6443 within 0.17859509800018714s' (what was left)."""
    reason = probe._tcp_reason(socket.timeout('timed out'), h.VIP, 6443, 0.17859509800018714)
    assert reason.startswith('no answer from 198.51.100.254:6443 within 0.2s: ')
