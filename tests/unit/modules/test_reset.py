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


KUBE_VIP_MANIFEST = ('apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - env:\n    - name: vip_interface\n'
                     '      value: eth0\n    - name: address\n      value: %s\n'
                     '    image: ghcr.io/kube-vip/kube-vip:v1.2.3\n' % h.VIP)
IP_ADDR_SHOW = ['ip', '-o', 'addr', 'show']
VIP_HELD = ('1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n'
            '2: eth0    inet 198.51.100.11/24 brd 198.51.100.255 scope global eth0\\       valid_lft forever\n'
            '2: eth0    inet %s/32 scope global deprecated eth0\\       valid_lft forever preferred_lft 0sec\n' % h.VIP)
VIP_NOT_HELD = VIP_HELD.splitlines(True)[0] + VIP_HELD.splitlines(True)[1]


def control_plane_with_kube_vip(root):
    h.write_joined(root, control_plane=True)
    h.put(root, '/etc/kubernetes/manifests/kube-vip.yaml', KUBE_VIP_MANIFEST)


def kubeadm_reset_empties_the_manifests(root):
    """kubeadm reset empties /etc/kubernetes/manifests, kube-vip.yaml included."""
    kubeadm_reset_cleans(root)
    for name in os.listdir(os.path.join(root, 'etc/kubernetes/manifests')):
        os.unlink(os.path.join(root, 'etc/kubernetes/manifests', name))


@pytest.mark.parametrize('ip_output, removed', [(VIP_HELD, ['%s/32 dev eth0' % h.VIP]), (VIP_NOT_HELD, [])],
                         ids=['vip-holder', 'not-the-holder'])
def test_the_vip_leaves_the_node(tmp_path, capsys, ip_output, removed):
    """kubeadm reset ends kube-vip with SIGKILL: the holder kept the VIP (seen on the real lab: a reset cluster's
    VIP still answered ARP, so site.yml refused the bare nodes)."""
    control_plane_with_kube_vip(str(tmp_path))
    deletions = [call(['ip', 'addr', 'del', '%s/32' % h.VIP, 'dev', 'eth0'])] if removed else []
    result, ran = h.run_module(module, {}, [call(RESET, stdout=fixture('reset-v1.32.stdout'),
                                                 effect=kubeadm_reset_empties_the_manifests),
                                            call(IP_ADDR_SHOW, stdout=ip_output)] + deletions, tmp_path, capsys)
    assert result['changed'] and result['vip_removed'] == removed, result
    again, ran = h.run_module(module, {}, [], tmp_path, capsys)  # nothing names the VIP any more: nothing runs
    assert (again['changed'], again['vip_removed'], ran) == (False, [], [])


def test_check_mode_names_the_vip_and_removes_it_from_nowhere(tmp_path, capsys):
    control_plane_with_kube_vip(str(tmp_path))
    result, ran = h.run_module(module, {}, [call(IP_ADDR_SHOW, stdout=VIP_HELD)], tmp_path, capsys, check_mode=True)
    assert result['changed'] and result['vip_removed'] == ['%s/32 dev eth0' % h.VIP]
    assert ran == [IP_ADDR_SHOW] and (tmp_path / 'etc/kubernetes/manifests/kube-vip.yaml').exists()


def test_check_mode_removes_nothing(tmp_path, capsys):
    initialized_with_leftovers(str(tmp_path))
    h.run_module(module, {}, [], tmp_path, capsys, check_mode=True)
    assert (tmp_path / 'etc/cni/net.d/10-flannel.conflist').exists()
    assert (tmp_path / 'etc/kubernetes/admin.conf').exists()
