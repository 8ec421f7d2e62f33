# -*- coding: utf-8 -*-
"""vipadm.kubeadm.join, data-driven: parameters, node files, kubeadm texts -> result."""

import os
import re
import stat
import sys

import pytest
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures', 'kubeadm'))

import harness as h  # noqa: E402
from harness import call, fixture  # noqa: E402

from ansible_collections.vipadm.kubeadm.plugins.modules import join as join_module  # noqa: E402

CONFIG = '/etc/kubernetes/vipadm/kubeadm-join.yaml'
JOIN = ['/usr/bin/kubeadm', 'join', '--config', '{root}' + CONFIG]
IS_ENABLED = [h.SYSTEMCTL, 'is-enabled', 'kubelet']
ENABLE = [h.SYSTEMCTL, 'enable', 'kubelet']
OTHER_HASH = 'sha256:11bdf3cc08ea132b33e1921b2d74c4bfc516802b4800c89e595ae04b3d1cf3d7'

WORKER = {'kubernetes_version': '1.29.10', 'api_endpoint': h.ENDPOINT, 'token': h.TOKEN,
          'ca_cert_hash': [h.OUTPUT_CA_HASH], 'ignore_preflight_errors': ['Swap']}
CONTROL_PLANE = {'kubernetes_version': '1.32.4', 'api_endpoint': h.ENDPOINT, 'token': h.TOKEN,
                 'ca_cert_hash': [h.OUTPUT_CA_HASH], 'control_plane': True, 'certificate_key': h.KEY,
                 'advertise_address': '198.51.100.12', 'node_name': 'cp2',
                 'cri_socket': 'unix:///run/containerd/containerd.sock'}


def this_cluster(params):
    """The parameters with ca_cert_hash set to the hash of the test CA the node files use."""
    merged = dict(params)
    merged['ca_cert_hash'] = [h.make_ca()[2]]
    return merged


def joined_worker(root):
    h.write_joined(root)


def joined_control_plane(root):
    h.write_joined(root, control_plane=True)


def other_cluster(root):
    h.write_joined(root, endpoint='198.51.100.200:6443', ca_pem=h.make_ca('other-cluster')[0])


def half_control_plane(root):
    # kubelet.conf of this cluster but no etcd/apiserver manifests: a control plane join stopped half-way
    h.write_joined(root)


def stale_worker_files(root):
    h.put(root, '/etc/kubernetes/bootstrap-kubelet.conf', 'x')


def stale_etcd(root):
    h.put(root, '/var/lib/etcd/member/snap/db', 'db')


def failing(fixture_name, version):
    return [call(JOIN, rc=1, stderr=fixture(fixture_name))]


CASES = [
    dict(id='worker-1.29-v1beta3', params=WORKER, calls=[call(JOIN, stdout=fixture(
        'join-worker-success-v1.34.stdout'), effect=joined_worker)],
         config='join-worker-v1.29.yaml', expect=dict(changed=True, control_plane=False)),
    dict(id='control-plane-1.32-v1beta4', params=CONTROL_PLANE, calls=[call(JOIN, stdout=fixture(
        'join-control-plane-success-v1.30.stdout'), effect=joined_control_plane)],
         config='join-control-plane-v1.32.yaml', expect=dict(changed=True, control_plane=True, node_name='cp2')),
    dict(id='check-mode', params=CONTROL_PLANE, check_mode=True, calls=[], config=None,
         expect=dict(changed=True)),
    dict(id='check-mode-preview-without-credentials', check_mode=True, calls=[], config=None,
         params=dict(CONTROL_PLANE, token='', ca_cert_hash=[], certificate_key=None),
         expect=dict(changed=True, control_plane=True)),
    dict(id='check-mode-preview-joined-node-unchanged', check_mode=True, calls=[], config=None,
         node=joined_control_plane, params=dict(CONTROL_PLANE, token='', ca_cert_hash=[], certificate_key=None),
         expect=dict(changed=False)),
    dict(id='check-mode-preview-half-joined-refused', check_mode=True, calls=[], config=None,
         node=half_control_plane, params=dict(CONTROL_PLANE, token='', ca_cert_hash=[], certificate_key=None),
         fail=r'join that did not finish as control plane'),
    dict(id='check-mode-preview-bad-endpoint', check_mode=True, calls=[], config=None,
         params=dict(WORKER, token='', ca_cert_hash=[], api_endpoint=h.VIP),
         fail=r"^api_endpoint '198\.51\.100\.254' must be HOST:PORT"),
    dict(id='empty-token-refused-outside-check-mode', params=dict(WORKER, token=''), calls=[], config=None,
         fail=r'^token is not a bootstrap token'),
    dict(id='worker-already-joined', params=this_cluster(WORKER), node=joined_worker, calls=[], config=None,
         expect=dict(changed=False)),
    # enable_kubelet: kubeadm starts the kubelet but never enables it.
    dict(id='worker-enables-the-kubelet-before-join', params=dict(WORKER, enable_kubelet=True),
         calls=[call(IS_ENABLED, rc=1, stdout='disabled\n'), call(ENABLE),
                call(JOIN, stdout=fixture('join-worker-success-v1.34.stdout'), effect=joined_worker)],
         config='join-worker-v1.29.yaml', expect=dict(changed=True, kubelet_enabled=True)),
    dict(id='joined-worker-with-disabled-kubelet-enables-it', params=this_cluster(dict(WORKER, enable_kubelet=True)),
         node=joined_worker, calls=[call(IS_ENABLED, rc=1, stdout='disabled\n'), call(ENABLE)], config=None,
         expect=dict(changed=True, kubelet_enabled=True)),
    dict(id='joined-worker-with-enabled-kubelet-is-unchanged', params=this_cluster(dict(WORKER, enable_kubelet=True)),
         node=joined_worker, calls=[call(IS_ENABLED, stdout='enabled\n')], config=None,
         expect=dict(changed=False, kubelet_enabled=False)),
    dict(id='half-joined-refused-before-the-kubelet-is-touched', params=this_cluster(dict(CONTROL_PLANE,
                                                                                       enable_kubelet=True)),
         node=half_control_plane, calls=[], config=None, fail=r'join that did not finish as control plane'),
    dict(id='control-plane-already-joined', params=this_cluster(CONTROL_PLANE), node=joined_control_plane,
         calls=[], config=None, expect=dict(changed=False, control_plane=True)),
    dict(id='control-plane-already-joined-check-mode', params=this_cluster(CONTROL_PLANE), check_mode=True,
         node=joined_control_plane, calls=[], config=None, expect=dict(changed=False)),
    dict(id='other-cluster-refused', params=this_cluster(WORKER), node=other_cluster, calls=[], config=None,
         fail=r'already joined to another cluster \(kubelet\.conf points at 198\.51\.100\.200:6443 with CA '
              r'sha256:[0-9a-f]{64}, expected 198\.51\.100\.254:6443 .*reset playbook'),
    dict(id='half-joined-control-plane-refused', params=this_cluster(CONTROL_PLANE), node=half_control_plane,
         calls=[], config=None,
         fail=r'join that did not finish as control plane \(kubelet\.conf without /etc/kubernetes/manifests/'
              r'etcd\.yaml, /etc/kubernetes/manifests/kube-apiserver\.yaml\): run the reset playbook'),
    dict(id='stale-bootstrap-kubelet-conf-refused', params=WORKER, node=stale_worker_files, calls=[],
         config=None, fail=r'did not finish as worker \(/etc/kubernetes/bootstrap-kubelet\.conf\)'),
    dict(id='stale-etcd-data-refused-for-control-plane', params=CONTROL_PLANE, node=stale_etcd, calls=[],
         config=None, fail=r'did not finish as control plane \(/var/lib/etcd/ \(not empty\)\)'),
    dict(id='token-expired-1.33', params=dict(WORKER, kubernetes_version='1.33.3'),
         calls=failing('join-token-invalid-v1.33.stderr', '1.33'), config='any',
         fail=r'^The cluster at 198\.51\.100\.254:6443 does not know the bootstrap token with ID "mp2q48", or it '
              r'expired: create fresh credentials with join_credentials', expect=dict(failure='token_invalid')),
    dict(id='ca-hash-mismatch-1.30', params=dict(WORKER, kubernetes_version='1.30.1'),
         calls=failing('join-ca-hash-mismatch-v1.30.stderr', '1.30'), config='any',
         fail=r'^The cluster at 198\.51\.100\.254:6443 presents a CA whose public key hash is ' + OTHER_HASH +
              r', which is not in ca_cert_hash', expect=dict(failure='ca_hash_mismatch', phase='preflight')),
    dict(id='connection-refused-1.32', params=dict(WORKER, kubernetes_version='1.32.0'),
         calls=failing('join-connection-refused-v1.32.stderr', '1.32'), config='any',
         fail=r'^The API endpoint 198\.51\.100\.254:6443 does not answer \(connection refused\): check that the '
              r'VIP is up', expect=dict(failure='endpoint_unreachable')),
    dict(id='no-route-1.35', params=dict(WORKER, kubernetes_version='1.35.0'),
         calls=failing('join-no-route-v1.35.stderr', '1.35'), config='any',
         fail=r'does not answer \(no route to host\)', expect=dict(failure='endpoint_unreachable')),
    dict(id='timeout-1.29', params=WORKER, calls=failing('join-timeout-v1.29.stderr', '1.29'), config='any',
         fail=r'does not answer \(no answer before the timeout: Client\.Timeout exceeded\)',
         expect=dict(failure='endpoint_unreachable')),
    dict(id='certificate-key-expired-1.31', params=dict(CONTROL_PLANE, kubernetes_version='1.31.2'),
         calls=failing('join-certs-expired-v1.31.stderr', '1.31'), config='any',
         fail=r'^The uploaded control plane certificates \(Secret kube-system/kubeadm-certs\) are gone; they '
              r'expire 2 hours after the upload', expect=dict(failure='certificate_key_expired',
                                                              phase='control-plane-prepare/download-certs')),
    dict(id='already-joined-preflight-1.32', params=dict(WORKER, kubernetes_version='1.32.1'),
         calls=failing('join-already-joined-v1.32.stderr', '1.32'), config='any',
         fail=r'^This node is already part of a cluster \(/etc/kubernetes/kubelet\.conf exists\): run the reset '
              r'playbook', expect=dict(failure='already_joined')),
    dict(id='other-preflight-1.36', params=dict(WORKER, kubernetes_version='1.36.0'),
         calls=failing('join-preflight-v1.36.stderr', '1.36'), config='any',
         fail=r'^kubeadm join failed its preflight checks: FileExisting-conntrack \(conntrack not found in system '
              r'path\); FileContent--proc-sys-net-ipv4-ip_forward \(', expect=dict(failure='preflight')),
    dict(id='no-control-plane-endpoint-1.30', params=dict(CONTROL_PLANE, kubernetes_version='1.30.3'),
         calls=failing('join-no-control-plane-endpoint-v1.30.stderr', '1.30'), config='any',
         fail=r'^The cluster has no controlPlaneEndpoint', expect=dict(failure='no_control_plane_endpoint')),
    dict(id='bad-token-shape', params=dict(WORKER, token='not-a-token'), calls=[], config=None,
         fail=r'^token is not a bootstrap token'),
    dict(id='bad-hash-shape', params=dict(WORKER, ca_cert_hash=['sha256:1234']), calls=[], config=None,
         fail=r'ca_cert_hash must be "sha256:" followed by 64 lowercase hex digits \(got sha256:1234\)'),
    dict(id='control-plane-without-key', params={k: v for k, v in CONTROL_PLANE.items() if k != 'certificate_key'},
         calls=[], config=None, fail=r'^A control plane join needs certificate_key'),
    dict(id='control-plane-bad-key', params=dict(CONTROL_PLANE, certificate_key='abc'), calls=[], config=None,
         fail=r'^A control plane join needs certificate_key \(64 lowercase hex digits\)'),
    dict(id='endpoint-without-port', params=dict(WORKER, api_endpoint=h.VIP), calls=[], config=None,
         fail=r"^api_endpoint '198\.51\.100\.254' must be HOST:PORT"),
    dict(id='unsupported-version', params=dict(WORKER, kubernetes_version='1.27.3'), calls=[], config=None,
         fail=r'supported are 1\.29 to 1\.37'),
]


@pytest.mark.parametrize('case', CASES, ids=[case['id'] for case in CASES])
def test_join(case, tmp_path, capsys):
    if case.get('node'):
        case['node'](tmp_path)
    config_file = tmp_path / CONFIG.lstrip('/')
    seen = []  # the config file as kubeadm join found it: (text, mode)

    def reading_the_config(effect):
        def run_effect(root):
            seen.append((config_file.read_text(), stat.S_IMODE(config_file.stat().st_mode)))
            if effect:
                effect(root)
        return run_effect

    calls = [dict(c, effect=reading_the_config(c['effect'])) if c['argv'] == JOIN else c for c in case['calls']]
    result, _ran = h.run_module(join_module, case['params'], calls, tmp_path, capsys,
                                check_mode=case.get('check_mode', False), diff=True)
    if case.get('fail'):
        assert result.get('failed') is True, result
        assert re.search(case['fail'], result['msg']), result['msg']
    else:
        assert not result.get('failed'), result
    for key, value in (case.get('expect') or {}).items():
        assert result[key] == value, key
    # The file holds the token and the certificate key: it is gone after kubeadm join, success or failure.
    assert not config_file.exists()
    if case['config'] is None:
        assert seen == []
    else:
        (text, mode), = seen
        assert mode == 0o600
        if case['config'] != 'any':
            assert yaml.safe_load(text) == yaml.safe_load(fixture('config/' + case['config']))


def test_secrets_stay_out_of_the_result(tmp_path, capsys):
    """Token and key are no_log parameters: no part of the result (diff, invocation) shows them."""
    result, _ = h.run_module(join_module, CONTROL_PLANE, [], tmp_path, capsys, check_mode=True, diff=True)
    text = repr(result)
    assert h.TOKEN.split('.')[1] not in text and h.KEY not in text
    assert '<hidden>' in result['diff']['after']
    assert 'caCertHashes' in result['diff']['after']


def test_node_name_defaults_to_the_host_name(tmp_path, capsys):
    result, _ = h.run_module(join_module, WORKER, [], tmp_path, capsys, check_mode=True)
    assert result['node_name'] == __import__('socket').gethostname().lower()
