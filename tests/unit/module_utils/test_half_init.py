# -*- coding: utf-8 -*-
"""Half-way init: the probe of kubeadm-config, the decision to reset or refuse, and the reset flow."""

import base64
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures', 'kubeadm'))

import harness as h  # noqa: E402

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _half_init as half  # noqa: E402
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm_actions as actions  # noqa: E402
from ansible_collections.vipadm.kubeadm.plugins.module_utils._kubeadm import KubeadmError  # noqa: E402

DETAIL = 'the API server at https://198.51.100.11:6443 with /etc/kubernetes/super-admin.conf answered 404'

# (probe outcome, other nodes with files, kubelet-client-current.pem exists) -> decision
DECISIONS = [
    (half.PRESENT, {}, True, half.FINISHED),
    (half.PRESENT, {'cp2': 'control_plane'}, True, half.FINISHED),
    (half.ABSENT, {}, False, half.HALF_INIT),
    (half.ABSENT, {}, True, half.HALF_INIT),
    (half.ABSENT, {'cp2': 'partial'}, False, half.REFUSE),
    (half.ABSENT, {'w1': 'worker'}, False, half.REFUSE),
    (half.NO_ANSWER, {}, False, half.HALF_INIT),
    (half.NO_ANSWER, {}, True, half.REFUSE),
    (half.NO_ANSWER, {'cp2': 'control_plane'}, False, half.FINISHED),  # cp2 joined: init finished
    (half.NO_ANSWER, {'cp2': 'control_plane'}, True, half.FINISHED),   # e.g. this node just powered on
    (half.NO_ANSWER, {'w1': 'worker', 'cp2': 'partial'}, True, half.FINISHED),
    (half.NO_ANSWER, {'cp2': 'partial'}, False, half.REFUSE),
    (half.UNKNOWN, {'cp2': 'control_plane'}, False, half.FINISHED),
    (half.UNKNOWN, {}, False, half.REFUSE),
    (half.UNKNOWN, {'cp2': 'unknown'}, False, half.REFUSE),
]


@pytest.mark.parametrize('outcome, others, finalized, expected', DECISIONS)
def test_decide(outcome, others, finalized, expected):
    decision, sentence = half.decide(outcome, DETAIL, others, finalized)
    assert decision == expected
    assert DETAIL in sentence
    for name in others:
        if expected == half.REFUSE:
            assert name in sentence
    if expected == half.REFUSE:
        assert 'nothing was reset' in sentence and 'run' in sentence


@pytest.mark.parametrize('status, outcome', [(200, half.PRESENT), (404, half.ABSENT), (403, half.UNKNOWN),
                                             (401, half.UNKNOWN), (500, half.UNKNOWN)])
def test_classify_status(status, outcome):
    assert half.classify_status(status) == outcome


def test_local_api_endpoint_from_manifest():
    manifest = ('spec:\n  containers:\n  - command:\n    - kube-apiserver\n'
                '    - --advertise-address=198.51.100.11\n    - --secure-port=6444\n')
    assert half.local_api_endpoint(manifest) == ('198.51.100.11', 6444)
    assert half.local_api_endpoint('    - --advertise-address=10.0.0.1\n') == ('10.0.0.1', 6443)
    assert half.local_api_endpoint('') == (None, 6443)


def kubeconfig(cert='CERT', key='KEY'):
    encode = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    return ('apiVersion: v1\nusers:\n- name: u\n  user:\n    client-certificate-data: %s\n'
            '    client-key-data: %s\n' % (encode(cert), encode(key)))


def node(root, super_admin=True):
    h.write_initialized(root)
    h.put(root, '/etc/kubernetes/manifests/kube-apiserver.yaml', '    - --advertise-address=198.51.100.11\n')
    h.put(root, '/etc/kubernetes/admin.conf', kubeconfig('ADMIN', 'ADMINKEY'))
    if super_admin:
        h.put(root, half.SUPER_ADMIN_CONF, kubeconfig('SUPER', 'SUPERKEY'))
    elif os.path.exists(os.path.join(str(root), half.SUPER_ADMIN_CONF.lstrip('/'))):
        os.unlink(os.path.join(str(root), half.SUPER_ADMIN_CONF.lstrip('/')))


@pytest.mark.parametrize('super_admin, expected_cert', [(True, 'SUPER'), (False, 'ADMIN')])
def test_probe_uses_the_nodes_own_credentials(tmp_path, super_admin, expected_cert):
    node(tmp_path, super_admin)
    seen = {}

    def reader(address, port, ca_pem, cert, key, timeout):
        seen.update(address=address, port=port, cert=cert, ca='BEGIN CERTIFICATE' in ca_pem)
        return 404

    outcome, detail = half.probe(str(tmp_path), reader=reader)
    assert outcome == half.ABSENT and '404' in detail
    assert seen == {'address': '198.51.100.11', 'port': 6443, 'cert': expected_cert, 'ca': True}


def test_probe_without_answer_and_with_a_tls_error(tmp_path):
    node(tmp_path)
    assert half.probe(str(tmp_path), reader=lambda *a: None)[0] == half.NO_ANSWER

    def broken(*_args):
        raise OSError('certificate verify failed')
    assert half.probe(str(tmp_path), reader=broken)[0] == half.UNKNOWN


def flow(root, outcome, others, check_mode=False):
    calls = []

    def run(argv):
        calls.append(argv)
        return 0, '', ''
    params = {'remove_paths': ['/var/lib/etcd'], 'cri_socket': None, 'other_nodes': others}
    result = actions.reset_unfinished_init(params, str(root), run, lambda: '/usr/bin/kubeadm', check_mode,
                                           probe=lambda _root: (outcome, DETAIL))
    return result, calls


def test_half_init_is_reset(tmp_path):
    node(tmp_path)
    result, calls = flow(tmp_path, half.ABSENT, {'cp2': 'none', 'w1': 'none'})
    assert result['changed'] and result['half_init'] and result['kubeadm_reset']
    assert 'stopped half-way' in result['msg']
    assert calls == [['/usr/bin/kubeadm', 'reset', '-f']]


def test_half_init_in_check_mode_runs_nothing(tmp_path):
    node(tmp_path)
    result, calls = flow(tmp_path, half.ABSENT, {}, check_mode=True)
    assert result['changed'] and result['half_init'] and calls == []


def test_finished_init_is_left_alone(tmp_path):
    node(tmp_path)
    result, calls = flow(tmp_path, half.PRESENT, {'cp2': 'control_plane'})
    assert not result['changed'] and not result['half_init'] and calls == []


def test_possible_cluster_is_refused(tmp_path):
    node(tmp_path)
    with pytest.raises(KubeadmError, match='cp2 \\(worker\\).*nothing was reset'):
        flow(tmp_path, half.ABSENT, {'cp2': 'worker'})


def test_no_manifest_nothing_to_check(tmp_path):
    result, calls = flow(tmp_path, half.ABSENT, {})
    assert not result['changed'] and calls == []


class FakeClock:
    """time.monotonic / time.sleep for the wait of reset_unfinished_init: sleeping advances the clock."""

    def __init__(self):
        self.now, self.sleeps = 1000.0, []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def waiting_flow(root, outcomes, others, timeout):
    """reset_unfinished_init with a probe that returns the given outcomes in turn (the last one repeats)."""
    probes, calls, clock = [], [], FakeClock()

    def probe(_root):
        probes.append(clock())
        return outcomes[min(len(probes), len(outcomes)) - 1], DETAIL

    def run(argv):
        calls.append(argv)
        return 0, '', ''
    params = {'remove_paths': ['/var/lib/etcd'], 'cri_socket': None, 'other_nodes': others,
              'api_server_timeout': timeout}
    result = actions.reset_unfinished_init(params, str(root), run, lambda: '/usr/bin/kubeadm', False,
                                           probe=probe, clock=clock, sleep=clock.sleep)
    return result, calls, probes


def test_init_host_just_powered_on_is_waited_for(tmp_path):
    """Init finished, no node joined yet, the init host was powered off and on: its API server answers
    a few seconds after the kubelet started it (seen on real components: refused at once before)."""
    node(tmp_path)
    h.put(tmp_path, half.KUBELET_CLIENT_CURRENT, 'PEM')
    result, calls, probes = waiting_flow(tmp_path, [half.NO_ANSWER] * 5 + [half.PRESENT], {'cp2': 'none'}, 120)
    assert not result['changed'] and not result['half_init'] and calls == []
    assert 'kubeadm-config exists' in result['msg']
    assert len(probes) == 6 and probes[-1] - probes[0] <= 120


def test_api_server_that_never_answers_is_refused_after_the_timeout(tmp_path):
    node(tmp_path)
    h.put(tmp_path, half.KUBELET_CLIENT_CURRENT, 'PEM')
    with pytest.raises(KubeadmError, match='nothing was reset'):
        waiting_flow(tmp_path, [half.NO_ANSWER], {}, 30)


@pytest.mark.parametrize('outcomes, finalized', [([half.NO_ANSWER], False), ([half.ABSENT], True), ([half.PRESENT], True)])
def test_no_wait_when_the_first_probe_decides(tmp_path, outcomes, finalized):
    node(tmp_path)
    if finalized:
        h.put(tmp_path, half.KUBELET_CLIENT_CURRENT, 'PEM')
    _result, _calls, probes = waiting_flow(tmp_path, outcomes, {}, 120)
    assert len(probes) == 1
