# -*- coding: utf-8 -*-
"""etcd through its v3 JSON gateway (module_utils/_etcd): the member list etcd 3.6.8 printed on the lab, and the
client against an HTTPS server on 127.0.0.1 that, like kubeadm's etcd, accepts only client certificates of its CA."""

import http.server
import json
import os
import ssl
import sys
import threading

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures', 'kubeadm'))

import harness as h  # noqa: E402

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _etcd as etcd  # noqa: E402
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _cluster as cluster  # noqa: E402

FIXTURES = os.path.join(HERE, '..', 'fixtures', 'day2')


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding='utf-8') as handle:
        return handle.read()


def test_the_member_list_of_etcd_3_6_8():
    members = etcd.parse_members(json.loads(fixture('etcd-member-list-v3.6.8.json')))
    assert [m['name'] for m in members] == ['cp2', 'cp4', 'cp1', 'cp3', 'cp5']
    assert members[1] == {
        'id': '1478798294049406189',
        'name': 'cp4',
        'peer_urls': ['https://198.51.100.14:2380'],
        'client_urls': ['https://198.51.100.14:2379'],
        'learner': False,
    }


def test_a_member_that_has_not_started_and_a_learner():
    members = etcd.parse_members(
        {'members': [{'ID': '7', 'peerURLs': ['https://198.51.100.14:2380'], 'isLearner': True}]}
    )
    assert members == [
        {'id': '7', 'name': '', 'peer_urls': ['https://198.51.100.14:2380'], 'client_urls': [], 'learner': True}
    ]
    assert etcd.describe(members[0]) == 'a member that has not started (id 7, https://198.51.100.14:2380)'


@pytest.mark.parametrize(
    'url, expected',
    [
        ('https://127.0.0.1:2379', ('127.0.0.1', 2379)),
        ('https://[2001:db8::1]:2379', ('2001:db8::1', 2379)),
        ('https://cp1.example:2379/', ('cp1.example', 2379)),
    ],
)
def test_split_url(url, expected):
    assert etcd.split_url(url) == expected


def test_a_url_without_port_is_refused():
    with pytest.raises(etcd.EtcdError, match='not an etcd URL with a port'):
        etcd.split_url('https://127.0.0.1')


class Gateway(http.server.BaseHTTPRequestHandler):
    """etcd's JSON gateway, as far as vipadm uses it."""

    members = []
    healthy = True

    def log_message(self, *args):
        pass

    def _answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == '/health':
            self._answer(200, {'health': 'true' if Gateway.healthy else 'false', 'reason': ''})
        else:
            self._answer(404, {'message': 'not found'})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers['Content-Length'])) or b'{}')
        if self.path == '/v3/cluster/member/list':
            self._answer(200, {'members': Gateway.members})
        elif self.path == '/v3/cluster/member/remove':
            left = [m for m in Gateway.members if m['ID'] != body.get('ID')]
            if len(left) == len(Gateway.members):
                self._answer(
                    404, {'error': 'etcdserver: member not found', 'code': 5, 'message': 'etcdserver: member not found'}
                )
                return
            Gateway.members = left
            self._answer(200, {'members': left})
        else:
            self._answer(404, {'message': 'not found'})


@pytest.fixture
def gateway(tmp_path):
    """(node root with the etcd CA and apiserver-etcd-client files, endpoint): etcd's gateway on 127.0.0.1."""
    ca_pem, ca_key, _hash = h.make_ca('etcd-ca')
    server_pem, server_key = h.make_server_cert(ca_key, ca_pem, ip_sans=['127.0.0.1'])
    client_pem, client_key = h.make_server_cert(ca_key, ca_pem, common_name='kube-apiserver-etcd-client')
    h.put(tmp_path, etcd.ETCD_CA, ca_pem)
    h.put(tmp_path, etcd.CLIENT_CERT, client_pem)
    h.put(tmp_path, etcd.CLIENT_KEY, client_key)
    for name, text in (('server.crt', server_pem), ('server.key', server_key), ('ca.crt', ca_pem)):
        (tmp_path / name).write_text(text)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(tmp_path / 'server.crt'), str(tmp_path / 'server.key'))
    context.load_verify_locations(str(tmp_path / 'ca.crt'))
    context.verify_mode = ssl.CERT_REQUIRED  # etcd's --client-cert-auth
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Gateway)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = 'https://127.0.0.1:%d' % server.server_address[1]
    Gateway.members = [
        {'ID': '11', 'name': 'cp1', 'peerURLs': ['https://198.51.100.11:2380'], 'clientURLs': [endpoint]},
        {'ID': '12', 'name': 'cp2', 'peerURLs': ['https://198.51.100.12:2380'], 'clientURLs': [endpoint]},
        # nothing listens on port 9 of 127.0.0.1: a member that does not answer
        {'ID': '13', 'name': 'cp3', 'peerURLs': ['https://198.51.100.13:2380'], 'clientURLs': ['https://127.0.0.1:9']},
    ]
    Gateway.healthy = True
    yield str(tmp_path), endpoint
    server.shutdown()
    server.server_close()


def test_members_with_health_and_removal(gateway):
    root, endpoint = gateway
    client = etcd.Client(root, endpoint=endpoint)
    found = client.members_with_health(timeout=1.0)
    assert [(m['name'], m['healthy']) for m in found] == [('cp1', True), ('cp2', True), ('cp3', False)]
    assert [m['name'] for m in client.remove('13')] == ['cp1', 'cp2']
    with pytest.raises(
        etcd.EtcdError, match=r'answered POST /v3/cluster/member/remove with HTTP 404: etcdserver: ' r'member not found'
    ):
        client.remove('13')


def test_a_member_that_says_it_is_not_healthy(gateway):
    root, endpoint = gateway
    Gateway.healthy = False
    assert etcd.Client(root, endpoint=endpoint).healthy({'client_urls': [endpoint]}) is False


def test_no_answer_is_a_sentence(gateway):
    root, _endpoint = gateway
    with pytest.raises(
        etcd.EtcdError, match=r'^etcd at https://127.0.0.1:9 did not answer POST /v3/cluster/member/list'
    ):
        etcd.Client(root, endpoint='https://127.0.0.1:9').members()


def test_a_node_without_etcd_client_files(tmp_path):
    with pytest.raises(
        etcd.EtcdError,
        match=r'/etc/kubernetes/pki/etcd/ca.crt, .* missing: this node is not a kubeadm '
        r'control plane with a stacked etcd',
    ):
        etcd.Client(str(tmp_path))


# --- the etcd_member flow, through the same gateway ------------------------------------------------------------


def test_etcd_member_absent_removes_a_dead_member_once(gateway):
    root, endpoint = gateway
    client = etcd.Client(root, endpoint=endpoint, timeout=1.0)
    params = {'name': 'cp3', 'state': 'absent', 'timeout': 1.0}
    preview = cluster.etcd_member_absent(params, root, None, check_mode=True, client=client)
    assert preview['changed'] is True and preview['members'] == ['cp1', 'cp2']
    assert [m['name'] for m in Gateway.members] == ['cp1', 'cp2', 'cp3'], 'check mode removed a member'
    done = cluster.etcd_member_absent(params, root, None, client=client)
    assert done['changed'] is True and done['removed']['id'] == '13' and done['removed']['healthy'] is False
    assert done['members'] == ['cp1', 'cp2']
    again = cluster.etcd_member_absent(params, root, None, client=client)
    assert again == {'changed': False, 'removed': None, 'members': ['cp1', 'cp2']}


def test_etcd_member_absent_refuses_a_quorum_break(gateway):
    root, endpoint = gateway
    client = etcd.Client(root, endpoint=endpoint, timeout=1.0)
    with pytest.raises(cluster.removal.RemovalRefused, match=r"^Removing cp2 would break etcd's quorum"):
        cluster.etcd_member_absent({'name': 'cp2', 'state': 'absent', 'timeout': 1.0}, root, None, client=client)
    assert len(Gateway.members) == 3
