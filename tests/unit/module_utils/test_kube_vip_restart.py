# -*- coding: utf-8 -*-
"""Waiting for kube-vip to be replaced after its manifest changed: the decision, the poll loop, and
vipadm.kubeadm.wait_for_vip with after_kube_vip_restart against an HTTPS server that requires a client
certificate and serves kube-vip's Lease as it changes."""

import base64
import http.server
import json
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures', 'kubeadm'))
sys.path.insert(0, HERE)

import harness as h  # noqa: E402
from test_vip_probe import Server  # noqa: E402

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm_state as state  # noqa: E402
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _vip_probe as probe  # noqa: E402
from ansible_collections.vipadm.kubeadm.plugins.modules import wait_for_vip as module  # noqa: E402

LOOPBACK = '127.0.0.1'
LEASE_PATH = '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/plndr-cp-lock'
CHANGED_AT = 1795069600.0  # 2026-11-19T06:26:40Z


def lease(holder, acquire_time):
    return {'kind': 'Lease', 'metadata': {'name': 'plndr-cp-lock', 'namespace': 'kube-system'},
            'spec': {'holderIdentity': holder, 'acquireTime': acquire_time, 'renewTime': acquire_time,
                     'leaseDurationSeconds': 15, 'leaseTransitions': 1}}


BEFORE = '2026-11-19T06:26:39.999999Z'
AFTER = '2026-11-19T06:26:40.000001Z'


def test_parse_micro_time():
    assert probe.parse_micro_time('2026-11-19T06:26:40.000001Z') == pytest.approx(CHANGED_AT + 1e-6)
    assert probe.parse_micro_time('2026-11-19T06:26:40Z') == CHANGED_AT
    assert probe.parse_micro_time('2026-11-19 06:26:40') is None
    assert probe.parse_micro_time(None) is None


@pytest.mark.parametrize('vip_local, the_lease, done, words', [
    (False, None, True, 'not on this node'),
    (True, None, False, 'cannot be read'),
    (True, lease('', AFTER), False, 'no holder'),
    (True, lease('cp1', BEFORE), False, 'has not restarted kube-vip yet'),
    (True, lease('cp1', '2026-11-19T06:26:40Z'), False, 'has not restarted'),  # the same instant is not after
    (True, lease('cp1', 'garbage'), False, 'has not restarted'),
    (True, lease('cp1', AFTER), True, 'cp1 took the Lease at 2026-11-19T06:26:40.000001Z'),
    (True, lease('cp2', AFTER), True, 'cp2 took the Lease'),
])
def test_kube_vip_replaced(vip_local, the_lease, done, words):
    got, why = probe.kube_vip_replaced(vip_local, the_lease, CHANGED_AT)
    assert got is done and words in why


class FakeTime:
    def __init__(self):
        self.now = 0.0

    def clock(self):
        return self.now

    def pause(self, seconds):
        self.now += seconds


def test_wait_polls_through_the_restart():
    """Old kube-vip holds the VIP, then the VIP goes (old one stopped), then the new one is back."""
    steps = [(True, lease('cp1', BEFORE)), (True, lease('cp1', BEFORE)), (True, OSError('refused')),
             (True, lease('', AFTER)), (True, lease('cp1', AFTER))]
    fake, seen = FakeTime(), []

    def is_local(address):
        seen.append(address)
        return steps[0][0]

    def read_lease():
        value = steps.pop(0)[1]
        if isinstance(value, Exception):
            raise value
        return value

    result = probe.wait_for_kube_vip_restart('198.51.100.254', CHANGED_AT, read_lease, timeout=10, sleep=0.2,
                                             clock=fake.clock, pause=fake.pause, is_local=is_local)
    assert result == {'restarted': True, 'reason': 'cp1 took the Lease at %s, after the manifest changed' % AFTER,
                      'elapsed': pytest.approx(0.8)}
    assert steps == [] and set(seen) == {'198.51.100.254'}


def test_wait_does_not_read_the_lease_when_the_vip_is_elsewhere():
    def read_lease():
        raise AssertionError('the Lease is only read while the VIP is on this node')

    result = probe.wait_for_kube_vip_restart('198.51.100.254', CHANGED_AT, read_lease, timeout=10,
                                             is_local=lambda _: False, pause=lambda _: None)
    assert (result['restarted'], result['reason'], result['elapsed'] < 1) == (True, 'the VIP is not on this node', True)


def test_wait_gives_up_at_the_timeout():
    fake = FakeTime()
    result = probe.wait_for_kube_vip_restart('198.51.100.254', CHANGED_AT, lambda: lease('cp1', BEFORE), timeout=2,
                                             sleep=0.5, clock=fake.clock, pause=fake.pause, is_local=lambda _: True)
    assert result['restarted'] is False and 'has not restarted kube-vip yet' in result['reason']
    assert 1.5 <= fake.now < 2


def test_vip_is_local():
    assert probe.vip_is_local(LOOPBACK) is True
    assert probe.vip_is_local('198.51.100.253') is False  # a lab address this host does not own (bind only)


def _kubeconfig_with_client(ca_pem, cert_pem, key_pem):
    text = h.kubeconfig('https://198.51.100.254:6443', ca_pem)
    return (text.replace('client-certificate-data: LS0t', 'client-certificate-data: '
                         + base64.b64encode(cert_pem.encode()).decode())
            .replace('client-key-data: LS0t', 'client-key-data: ' + base64.b64encode(key_pem.encode()).decode()))


def test_kubeconfig_client():
    ca_pem, ca_key, _ = h.make_ca('cluster-ca')
    cert_pem, key_pem = h.make_server_cert(ca_key, ca_pem, common_name='kubernetes-admin')
    assert state.kubeconfig_client(_kubeconfig_with_client(ca_pem, cert_pem, key_pem)) == (cert_pem, key_pem)
    assert state.kubeconfig_client(h.kubeconfig('https://198.51.100.254:6443', ca_pem).replace('client-key', 'x')) is None


# --- the module against an API server stand-in ---------------------------------------------------

class _LeaseHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        server.paths.append(self.path)
        if self.path == LEASE_PATH and not self.connection.getpeercert():
            self.send_error(403, 'leases.coordination.k8s.io is forbidden: User "system:anonymous"')
            return
        if self.path == LEASE_PATH:
            body = json.dumps(server.leases.pop(0) if len(server.leases) > 1 else server.leases[0]).encode()
        elif self.path == '/livez':
            body = b'ok'
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def lease_server(pki, leases):
    """HTTPS on 127.0.0.1 serving the Leases in turn (the last one stays) and /livez; the Lease needs a client
    certificate of the cluster CA, as the API server's authorization would."""
    server = Server(*pki['server'], handler=_LeaseHandler, client_ca=pki['ca'])
    server.httpd.leases = list(leases)
    return server


@pytest.fixture(scope='module')
def pki():
    ca_pem, ca_key, _ = h.make_ca('cluster-ca')
    return {'ca': ca_pem, 'server': h.make_server_cert(ca_key, ca_pem, ip_sans=[LOOPBACK]),
            'client': h.make_server_cert(ca_key, ca_pem, common_name='kubernetes-admin')}


def _node(tmp_path, pki, mtime):
    manifest = h.put(tmp_path, '/etc/kubernetes/manifests/kube-vip.yaml', 'kind: Pod\n')
    os.utime(manifest, (mtime, mtime))
    kubeconfig = h.put(tmp_path, '/etc/kubernetes/admin.conf', _kubeconfig_with_client(pki['ca'], *pki['client']))
    return manifest, kubeconfig


def test_module_waits_for_the_new_lease_then_probes(pki, tmp_path, capsys):
    manifest, kubeconfig = _node(tmp_path, pki, CHANGED_AT)
    with lease_server(pki, [lease('cp1', BEFORE), lease('', AFTER), lease('cp1', AFTER)]) as server:
        result, _ = h.run_module(module, {'address': LOOPBACK, 'port': server.port, 'ca_pem': pki['ca'], 'sleep': 0.1,
                                          'timeout': 20, 'after_kube_vip_restart': {
                                              'manifest': manifest, 'kubeconfig': kubeconfig}}, [], tmp_path, capsys)
    assert result.get('failed') is not True, result
    assert result['kube_vip_restart']['restarted'] is True
    assert result['kube_vip_restart']['reason'] == 'cp1 took the Lease at %s, after the manifest changed' % AFTER
    assert server.httpd.paths == [LEASE_PATH] * 3 + ['/livez'] and result['stage'] == 'ready'


def test_module_fails_when_kube_vip_is_never_replaced(pki, tmp_path, capsys):
    manifest, kubeconfig = _node(tmp_path, pki, CHANGED_AT)
    with lease_server(pki, [lease('cp1', BEFORE)]) as server:
        result, _ = h.run_module(module, {'address': LOOPBACK, 'port': server.port, 'ca_pem': pki['ca'], 'sleep': 0.1,
                                          'timeout': 1, 'after_kube_vip_restart': {
                                              'manifest': manifest, 'kubeconfig': kubeconfig}}, [], tmp_path, capsys)
    assert result['failed'] is True and result['kube_vip_restart']['restarted'] is False
    assert result['msg'].startswith('kube-vip on this node was not replaced within 1s after its manifest %s changed: '
                                    'the VIP is on this node and cp1 has held its Lease since %s' % (manifest, BEFORE))
    assert '/livez' not in server.httpd.paths


def test_module_without_client_certificate_fails_early(pki, tmp_path, capsys):
    manifest, _ = _node(tmp_path, pki, CHANGED_AT)
    kubeconfig = h.put(tmp_path, '/etc/kubernetes/kubelet.conf', h.kubeconfig('https://x:6443', pki['ca'])
                       .replace('client-certificate-data: LS0t\n', 'client-certificate: /var/lib/kubelet/pki/c.pem\n'))
    result, _ = h.run_module(module, {'address': LOOPBACK, 'ca_pem': pki['ca'], 'timeout': 1,
                                      'after_kube_vip_restart': {'manifest': manifest, 'kubeconfig': kubeconfig}},
                             [], tmp_path, capsys)
    assert result['failed'] is True
    assert result['msg'].startswith('Cannot use %s and the CA to read kube-vip\'s Lease (it has no '
                                    'client-certificate-data' % kubeconfig)


def test_module_missing_manifest_fails_early(pki, tmp_path, capsys):
    result, _ = h.run_module(module, {'address': LOOPBACK, 'ca_pem': pki['ca'], 'timeout': 1,
                                      'after_kube_vip_restart': {'manifest': str(tmp_path / 'nope.yaml')}},
                             [], tmp_path, capsys)
    assert result['failed'] is True and 'Cannot read the modification time of the kube-vip manifest' in result['msg']


def test_check_mode_does_not_wait_for_a_restart(pki, tmp_path, capsys):
    with lease_server(pki, [lease('cp1', BEFORE)]) as server:
        result, _ = h.run_module(module, {'address': LOOPBACK, 'port': server.port, 'ca_pem': pki['ca'],
                                          'after_kube_vip_restart': {'manifest': '/nonexistent'}},
                                 [], tmp_path, capsys, check_mode=True)
    assert 'kube_vip_restart' not in result and server.httpd.paths == ['/livez']
