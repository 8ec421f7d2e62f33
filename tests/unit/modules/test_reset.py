# -*- coding: utf-8 -*-
"""vipadm.kubeadm.reset: what runs, what is removed, idempotence and check mode."""

import os
import re
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures', 'kubeadm'))

import harness as h  # noqa: E402
from harness import call, fixture  # noqa: E402

from ansible_collections.vipadm.kubeadm.plugins.modules import reset as module  # noqa: E402

RESET = ['/usr/bin/kubeadm', 'reset', '-f']
HOME_KUBECONFIG = os.path.expanduser('~/.kube/config')
DEFAULT_PATHS = ['/etc/cni/net.d', '/etc/kubernetes/manifests/kube-vip.yaml', HOME_KUBECONFIG,
                 '/var/lib/etcd', '/etc/kubernetes/vipadm']


def kubeadm_reset_cleans(root):
    """What `kubeadm reset` deletes (reference 7.1); it leaves CNI, kube-vip, ~/.kube/config."""
    import shutil
    for path in ('/etc/kubernetes/pki', '/var/lib/kubelet', '/var/lib/etcd'):
        shutil.rmtree(os.path.join(root, path.lstrip('/')), ignore_errors=True)
    for name in h.MANIFESTS:
        os.unlink(os.path.join(root, 'etc/kubernetes/manifests/%s.yaml' % name))
    for name in ('admin.conf', 'super-admin.conf', 'kubelet.conf', 'controller-manager.conf', 'scheduler.conf'):
        path = os.path.join(root, 'etc/kubernetes', name)
        if os.path.exists(path):
            os.unlink(path)


def initialized_with_leftovers(root):
    h.write_initialized(root)
    h.put(root, '/etc/kubernetes/manifests/kube-vip.yaml', 'kind: Pod\n')
    h.put(root, '/etc/cni/net.d/10-flannel.conflist', '{}')
    h.put(root, HOME_KUBECONFIG, 'x')
    h.put(root, '/etc/kubernetes/vipadm/kubeadm-init.yaml', 'x')


def leftovers_only(root):
    h.put(root, '/etc/cni/net.d/10-flannel.conflist', '{}')
    os.makedirs(os.path.join(root, 'var/lib/etcd'))  # empty: nothing to do there


CASES = [
    dict(id='initialized-node', node=initialized_with_leftovers, params={},
         calls=[call(RESET, stdout=fixture('reset-v1.32.stdout'), stderr=fixture('reset-v1.32.stderr'),
                     effect=kubeadm_reset_cleans)],
         expect=dict(changed=True, kubeadm_reset=True, removed=DEFAULT_PATHS, half_init=False)),
    dict(id='check-mode', node=initialized_with_leftovers, params={}, check_mode=True, calls=[],
         expect=dict(changed=True, kubeadm_reset=True, removed=DEFAULT_PATHS)),
    dict(id='only-leftovers-no-kubeadm', node=leftovers_only, params={}, calls=[],
         expect=dict(changed=True, kubeadm_reset=False, removed=['/etc/cni/net.d'])),
    dict(id='clean-node', node=None, params={}, calls=[], expect=dict(changed=False, kubeadm_reset=False,
                                                                       removed=[], half_init=False)),
    dict(id='reset-fails', node=h.write_joined, params={},
         calls=[call(RESET, rc=1, stderr='error: error execution phase cleanup-node: failed to unmount '
                     '/var/lib/kubelet/pods: device or resource busy\n')],
         fail=r'^kubeadm reset failed in phase cleanup-node: failed to unmount .*busy\.$'),
]


@pytest.mark.parametrize('case', CASES, ids=[case['id'] for case in CASES])
def test_reset(case, tmp_path, capsys):
    if case['node']:
        case['node'](str(tmp_path))
    result, _ = h.run_module(module, case['params'], case['calls'], tmp_path, capsys,
                             check_mode=case.get('check_mode', False))
    if case.get('fail'):
        assert result.get('failed') is True and re.search(case['fail'], result['msg']), result
        return
    assert not result.get('failed'), result
    for key, value in case['expect'].items():
        assert result[key] == value, key
    if not case.get('check_mode'):
        # afterwards nothing is left: a second run changes nothing and runs nothing
        again, ran = h.run_module(module, case['params'], [], tmp_path, capsys)
        assert (again['changed'], again['removed'], ran) == (False, [], [])
        if '/etc/cni/net.d' in case['expect']['removed']:
            # a directory is emptied, not removed: packages own it
            assert os.listdir(tmp_path / 'etc/cni/net.d') == []


def test_cri_socket_is_passed_and_kube_vip_goes(tmp_path, capsys):
    h.write_joined(str(tmp_path), control_plane=True)
    h.put(str(tmp_path), '/etc/kubernetes/manifests/kube-vip.yaml', 'kind: Pod\n')
    socket_path = 'unix:///run/containerd/containerd.sock'
    result, _ = h.run_module(module, {'cri_socket': socket_path},
                             [call(RESET + ['--cri-socket', socket_path], stdout=fixture('reset-v1.32.stdout'),
                                   effect=kubeadm_reset_cleans)], tmp_path, capsys)
    assert result['changed'] and result['kubeadm_reset']
    assert not (tmp_path / 'etc/kubernetes/manifests/kube-vip.yaml').exists()
    assert '/etc/kubernetes/manifests/kube-vip.yaml' in result['removed']


def test_check_mode_removes_nothing(tmp_path, capsys):
    initialized_with_leftovers(str(tmp_path))
    h.run_module(module, {}, [], tmp_path, capsys, check_mode=True)
    assert (tmp_path / 'etc/cni/net.d/10-flannel.conflist').exists()
    assert (tmp_path / 'etc/kubernetes/admin.conf').exists()
