# -*- coding: utf-8 -*-
"""vipadm.kubeadm.join_credentials, data-driven: parameters, node files, kubeadm texts -> result."""

import os
import re
import sys

import pytest
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures', 'kubeadm'))

import harness as h  # noqa: E402
from harness import call, fixture  # noqa: E402

from ansible_collections.vipadm.kubeadm.plugins.modules import join_credentials as module  # noqa: E402

ADMIN = '{root}/etc/kubernetes/admin.conf'


def token_create(ttl='15m', **kwargs):
    return call(['/usr/bin/kubeadm', 'token', 'create', '--kubeconfig', ADMIN, '--ttl', ttl,
                 '--print-join-command'], **kwargs)


UPLOAD = ['/usr/bin/kubeadm', 'init', 'phase', 'upload-certs', '--upload-certs', '--kubeconfig', ADMIN]
PRINTED = fixture('token-create-print-join-command.stdout')

CASES = [
    dict(id='defaults', params={}, node=True,
         calls=[token_create(stdout=PRINTED), call(UPLOAD, stdout=fixture('upload-certs.stdout'),
                                                   stderr=fixture('upload-certs.stderr'))],
         expect=dict(changed=True, token=h.TOKEN, certificate_key=h.NEW_KEY, ca_cert_hash=h.OUTPUT_CA_HASH,
                     ca_cert='CA_PEM', api_endpoint=h.ENDPOINT)),
    dict(id='worker-only-longer-ttl', params={'token_ttl': '1h30m', 'upload_certs': False}, node=True,
         calls=[token_create('1h30m', stdout=PRINTED)],
         expect=dict(changed=True, token=h.TOKEN, certificate_key='')),
    dict(id='check-mode-reads-hash-and-endpoint', params={}, node=True, check_mode=True, calls=[],
         expect=dict(changed=True, token='', certificate_key='', ca_cert_hash='CA', ca_cert='CA_PEM',
                     api_endpoint=h.ENDPOINT)),
    dict(id='not-initialized', params={}, node=False, calls=[],
         fail=r'^/etc/kubernetes/admin\.conf does not exist: join credentials are made on an initialized '
              r'control plane'),
    dict(id='bad-ttl', params={'token_ttl': '15 minutes'}, node=True, calls=[],
         fail=r"^token_ttl '15 minutes' is not a duration"),
    dict(id='token-create-fails', params={}, node=True,
         calls=[token_create(rc=1, stderr='error: failed to create or update bootstrap token with name '
                             'bootstrap-token-mp2q48: secrets is forbidden: User "kubernetes-admin" cannot create '
                             'resource "secrets" in API group "" in the namespace "kube-system"\n')],
         fail=r'^kubeadm token create failed: failed to create or update bootstrap token .*secrets is forbidden.*\.$'),
    dict(id='upload-certs-prints-no-key', params={}, node=True,
         calls=[token_create(stdout=PRINTED), call(UPLOAD, stdout='[upload-certs] Skipping phase. Please see '
                                                   '--upload-certs\n')],
         fail=r'printed no certificate key as its last line'),
]


@pytest.mark.parametrize('case', CASES, ids=[case['id'] for case in CASES])
def test_join_credentials(case, tmp_path, capsys):
    if case['node']:
        h.write_initialized(tmp_path)
    result, _ = h.run_module(module, case['params'], case['calls'], tmp_path, capsys,
                             check_mode=case.get('check_mode', False))
    if case.get('fail'):
        assert result.get('failed') is True, result
        assert re.search(case['fail'], result['msg']), result['msg']
        return
    assert not result.get('failed'), result
    for key, value in case['expect'].items():
        assert result[key] == {'CA': h.make_ca()[2], 'CA_PEM': h.make_ca()[0]}.get(value, value), key
    assert not [key for key in result if key.startswith('_ansible_')]


# The parts of kubeadm's kube-apiserver manifest that upload-certs needs (as kubeadm 1.37.2 writes them).
APISERVER_MANIFEST = """apiVersion: v1
kind: Pod
metadata:
  annotations:
    kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint: {endpoint}
  labels:
    component: kube-apiserver
    tier: control-plane
  name: kube-apiserver
  namespace: kube-system
spec:
  containers:
  - command:
    - kube-apiserver
    - --advertise-address={address}
    - --allow-privileged=true
    - --secure-port=6443
    image: registry.k8s.io/kube-apiserver:v1.37.2
"""
CONFIG = '{root}/etc/kubernetes/vipadm-upload-certs.yaml'


@pytest.mark.parametrize(('endpoint', 'address'), [('198.51.100.11:6443', '198.51.100.11'),
                                                   ('[2001:db8::11]:6443', '2001:db8::11')])
def test_upload_certs_reads_the_address_of_this_api_server_not_the_default_route(endpoint, address, tmp_path,
                                                                                 capsys):
    """On a node without a default route kubeadm's own guess fails ("cannot use "0.0.0.0" as the bind address
    for the API Server", seen on the lab's air-gapped nodes): the module gives it the address and version of
    the node's own API server, in a file that is gone afterwards."""
    h.write_initialized(tmp_path)
    h.put(tmp_path, '/etc/kubernetes/manifests/kube-apiserver.yaml', APISERVER_MANIFEST.format(endpoint=endpoint, address=address))
    seen = []

    def read_config(root):
        with open(CONFIG.format(root=root), encoding='utf-8') as handle:
            seen.append(list(yaml.safe_load_all(handle)))
        assert oct(os.stat(CONFIG.format(root=root)).st_mode & 0o777) == '0o600'

    result, _ = h.run_module(module, {}, [
        token_create(stdout=PRINTED),
        call(UPLOAD + ['--config', CONFIG], stdout=fixture('upload-certs.stdout'), effect=read_config)],
        tmp_path, capsys)
    assert not result.get('failed'), result
    assert result['certificate_key'] == h.NEW_KEY
    assert seen == [[
        {'apiVersion': 'kubeadm.k8s.io/v1beta4', 'kind': 'InitConfiguration',
         'localAPIEndpoint': {'advertiseAddress': address, 'bindPort': 6443}},
        {'apiVersion': 'kubeadm.k8s.io/v1beta4', 'kind': 'ClusterConfiguration', 'kubernetesVersion': 'v1.37.2'}]]
    assert not os.path.exists(CONFIG.format(root=tmp_path))


# --- retried while the API endpoint does not answer --------------------------------------------------------------

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm_actions as actions  # noqa: E402
from ansible_collections.vipadm.kubeadm.plugins.module_utils._kubeadm import KubeadmError  # noqa: E402

NO_ROUTE = ('error: failed to create or update bootstrap token with name bootstrap-token-sxx5v3: unable to create '
            '*v1.Secret: Post "https://198.51.100.250:6443/api/v1/namespaces/kube-system/secrets?timeout=10s": dial '
            'tcp 198.51.100.250:6443: connect: no route to host\n')
FORBIDDEN = 'error: secrets is forbidden: User "kubernetes-admin" cannot create resource "secrets"\n'


class FakeClock:
    """time.monotonic and time.sleep of a run: sleeping moves the clock, each kubeadm call takes `cost` seconds."""

    def __init__(self, cost=1.0):
        self.now, self.cost, self.sleeps = 1000.0, cost, []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def scripted(clock, answers):
    """run(argv) answering from `answers` ((rc, stdout, stderr) per call, in order); the argv of each call kept."""
    calls = []

    def run(argv):
        calls.append(list(argv))
        clock.now += clock.cost
        return answers[len(calls) - 1]
    return run, calls


def test_credentials_are_tried_again_while_the_vip_does_not_answer_then_made(tmp_path):
    h.write_initialized(tmp_path)
    clock = FakeClock()
    upload = (0, fixture('upload-certs.stdout'), '')
    run, calls = scripted(clock, [(1, '', NO_ROUTE), (1, '', NO_ROUTE), (0, PRINTED, ''), (1, '', NO_ROUTE), upload])
    made = actions.fresh_credentials(run, h.KUBEADM, str(tmp_path / 'etc/kubernetes/admin.conf'), '15m',
                                     root=str(tmp_path), sleep=clock.sleep, clock=clock.clock)
    assert (made['token'], made['certificate_key']) == (h.TOKEN, h.NEW_KEY)
    assert [c[1:3] for c in calls] == [['token', 'create']] * 3 + [['init', 'phase']] * 2
    assert clock.sleeps == [actions.CREDENTIALS_RETRY_PAUSE] * 3


def test_credentials_give_up_with_kubeadms_reason_once_the_retry_time_is_spent(tmp_path):
    h.write_initialized(tmp_path)
    clock = FakeClock(cost=10.0)  # kubeadm's own 10 s request timeout per try
    run, calls = scripted(clock, [(1, '', NO_ROUTE)] * 100)
    with pytest.raises(KubeadmError, match=r'^kubeadm token create failed: .*connect: no route to host\.$'):
        actions.fresh_credentials(run, h.KUBEADM, str(tmp_path / 'etc/kubernetes/admin.conf'), '15m',
                                  root=str(tmp_path), sleep=clock.sleep, clock=clock.clock)
    assert clock.now - 1000.0 <= actions.CREDENTIALS_RETRY_SECONDS + 10.0  # never a try started after the bound
    assert len(calls) == 7  # 13 s per try within 90 s


def test_other_failures_are_not_tried_again(tmp_path):
    h.write_initialized(tmp_path)
    clock = FakeClock()
    run, calls = scripted(clock, [(1, '', FORBIDDEN)])
    with pytest.raises(KubeadmError, match='secrets is forbidden'):
        actions.fresh_credentials(run, h.KUBEADM, str(tmp_path / 'etc/kubernetes/admin.conf'), '15m',
                                  root=str(tmp_path), sleep=clock.sleep, clock=clock.clock)
    assert len(calls) == 1 and clock.sleeps == []
