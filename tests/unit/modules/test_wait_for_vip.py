# -*- coding: utf-8 -*-
"""vipadm.kubeadm.wait_for_vip end to end against HTTPS servers on 127.0.0.1."""

import os
import re
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures', 'kubeadm'))
sys.path.insert(0, os.path.join(HERE, '..', 'module_utils'))

import harness as h  # noqa: E402
from test_vip_probe import LOOPBACK, Server, free_port  # noqa: E402

from ansible_collections.vipadm.kubeadm.plugins.modules import wait_for_vip as module  # noqa: E402


@pytest.fixture(scope='module')
def ca():
    ca_pem, ca_key, _ = h.make_ca('cluster-ca')
    return ca_pem, h.make_server_cert(ca_key, ca_pem, ip_sans=[LOOPBACK])


def test_ready_with_ca_file(ca, tmp_path, capsys):
    ca_file = h.put(tmp_path, '/ca.crt', ca[0])
    with Server(*ca[1]) as server:
        result, ran = h.run_module(module, {'address': LOOPBACK, 'port': server.port, 'ca_cert': ca_file,
                                            'path': '/readyz'}, [], tmp_path, capsys)
    assert (result['changed'], result['stage'], result['status'], result['attempts']) == (False, 'ready', 200, 1)
    assert server.paths == ['/readyz'] and ran == []


def test_timeout_fails_with_stage_and_reason(ca, tmp_path, capsys):
    port = free_port()
    result, _ = h.run_module(module, {'address': LOOPBACK, 'port': port, 'ca_pem': ca[0], 'timeout': 1,
                                      'sleep': 1}, [], tmp_path, capsys)
    assert result['failed'] is True and result['stage'] == 'tcp'
    assert re.match(r'127\.0\.0\.1:%d did not answer /livez with 200 within 1s \(1 attempts\); last stage tcp: '
                    r'connection refused' % port, result['msg']), result['msg']


def test_fractional_sleep_probes_more_often(ca, tmp_path, capsys):
    port = free_port()
    result, _ = h.run_module(module, {'address': LOOPBACK, 'port': port, 'ca_pem': ca[0], 'timeout': 1,
                                      'sleep': 0.2}, [], tmp_path, capsys)
    assert result['failed'] is True and result['attempts'] >= 4, result


def test_http_status_in_failure(ca, tmp_path, capsys):
    with Server(*ca[1], statuses=(500,)) as server:
        result, _ = h.run_module(module, {'address': LOOPBACK, 'port': server.port, 'ca_pem': ca[0],
                                          'timeout': 1, 'sleep': 1}, [], tmp_path, capsys)
    assert result['failed'] is True and (result['stage'], result['status']) == ('http', 500)
    assert 'last stage http: GET /livez returned HTTP 500' in result['msg']


def test_check_mode_probes_once_and_does_not_fail(ca, tmp_path, capsys):
    result, _ = h.run_module(module, {'address': LOOPBACK, 'port': free_port(), 'ca_pem': ca[0]}, [], tmp_path,
                             capsys, check_mode=True)
    assert not result.get('failed') and (result['stage'], result['attempts']) == ('tcp', 1)


@pytest.mark.parametrize('params, message', [
    ({'ca_cert': '/nonexistent/ca.crt'}, r'^Cannot read the CA certificate /nonexistent/ca\.crt'),
    ({'ca_pem': 'not a certificate'}, r'^The CA certificate is not a PEM certificate'),
    ({'ca_pem': 'PEM', 'path': 'livez'}, r"^path 'livez' must start with \"/\""),
    ({}, r'one of the following is required: ca_cert, ca_pem'),
])
def test_bad_input_fails_early(params, message, tmp_path, capsys):
    args = {'address': LOOPBACK, 'port': 1}
    args.update(params)
    result, _ = h.run_module(module, args, [], tmp_path, capsys)
    assert result['failed'] is True and re.search(message, result['msg']), result['msg']
