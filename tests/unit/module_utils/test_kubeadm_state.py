# -*- coding: utf-8 -*-
"""Reading a node's kubeadm state from its files, under a temporary root."""

import os
import stat
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures', 'kubeadm'))

import harness as h  # noqa: E402

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm_state as state  # noqa: E402


def test_kubeconfig_cluster_inline_ca():
    pem = h.make_ca()[0]
    cluster = state.kubeconfig_cluster(h.kubeconfig('https://' + h.ENDPOINT, pem))
    assert cluster == {'server': 'https://' + h.ENDPOINT, 'ca_pem': pem}


def test_kubeconfig_cluster_quoted_server_and_ca_file(tmp_path):
    pem = h.make_ca()[0]
    h.put(tmp_path, '/etc/kubernetes/pki/ca.crt', pem)
    text = ('apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority: /etc/kubernetes/pki/ca.crt\n'
            '    server: "https://198.51.100.254:6443"\n  name: default-cluster\n')
    assert state.kubeconfig_cluster(text, str(tmp_path)) == {'server': 'https://198.51.100.254:6443', 'ca_pem': pem}


@pytest.mark.parametrize('setup, expected', [
    (lambda root: None, 'absent'),
    (lambda root: h.put(root, '/etc/kubernetes/manifests/kube-vip.yaml'), 'absent'),
    (h.write_initialized, 'initialized'),
    (lambda root: h.write_initialized(root, endpoint='198.51.100.9:6443'), 'other_cluster'),
    (lambda root: h.put(root, '/etc/kubernetes/manifests/etcd.yaml'), 'partial'),
    (lambda root: h.put(root, '/var/lib/etcd/member/x'), 'partial'),
    (lambda root: h.write_joined(root, control_plane=True), 'initialized'),  # a joined control plane looks alike
    (lambda root: h.write_joined(root), 'partial'),  # a worker is no control plane to init on
])
def test_init_state(tmp_path, setup, expected):
    setup(str(tmp_path))
    assert state.init_state(str(tmp_path), h.ENDPOINT)[0] == expected


def test_init_state_empty_etcd_dir_is_fine(tmp_path):
    os.makedirs(tmp_path / 'var/lib/etcd')
    assert state.init_state(str(tmp_path), h.ENDPOINT) == ('absent', {})


@pytest.mark.parametrize('setup, control_plane, expected', [
    (lambda root: None, False, 'absent'),
    (h.write_joined, False, 'joined'),
    (h.write_joined, True, 'partial'),
    (lambda root: h.write_joined(root, control_plane=True), True, 'joined'),
    (lambda root: h.write_joined(root, control_plane=True), False, 'joined'),
    (lambda root: h.write_joined(root, ca_pem=h.make_ca('another')[0]), False, 'other_cluster'),
    # same CA at another address (the kubelet of a control plane may talk to its local API server): same cluster
    (lambda root: h.write_joined(root, endpoint='198.51.100.12:6443'), False, 'joined'),
    (lambda root: h.put(root, '/etc/kubernetes/pki/ca.crt', h.make_ca()[0]), False, 'partial'),
    (lambda root: h.put(root, '/etc/kubernetes/manifests/kube-apiserver.yaml'), True, 'partial'),
    (lambda root: h.put(root, '/etc/kubernetes/manifests/kube-apiserver.yaml'), False, 'absent'),
])
def test_join_state(tmp_path, setup, control_plane, expected):
    setup(str(tmp_path))
    assert state.join_state(str(tmp_path), h.ENDPOINT, [h.make_ca()[2]], control_plane)[0] == expected


def test_join_state_without_readable_ca_falls_back_to_the_server(tmp_path):
    h.put(tmp_path, '/etc/kubernetes/kubelet.conf', 'clusters:\n- cluster:\n    server: https://198.51.100.9:6443\n')
    assert state.join_state(str(tmp_path), h.ENDPOINT, [h.make_ca()[2]], False)[0] == 'other_cluster'
    h.put(tmp_path, '/etc/kubernetes/kubelet.conf', 'clusters:\n- cluster:\n    server: https://%s\n' % h.ENDPOINT)
    assert state.join_state(str(tmp_path), h.ENDPOINT, [h.make_ca()[2]], False)[0] == 'joined'


def test_write_private_file_modes_and_replacement(tmp_path):
    path = str(tmp_path / 'etc/kubernetes/vipadm/kubeadm-init.yaml')
    state.write_private_file(path, 'first\n')
    state.write_private_file(path, 'second\n')
    assert open(path).read() == 'second\n'
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert os.listdir(os.path.dirname(path)) == ['kubeadm-init.yaml']


def test_remove_leftover_empties_directories_and_removes_files(tmp_path):
    h.put(tmp_path, '/etc/cni/net.d/10-a.conflist', '{}')
    h.put(tmp_path, '/etc/cni/net.d/sub/x', '{}')
    h.put(tmp_path, '/root/.kube/config', 'x')
    for path in ('/etc/cni/net.d', '/root/.kube/config', '/does/not/exist'):
        state.remove_leftover(str(tmp_path), path)
    assert os.listdir(tmp_path / 'etc/cni/net.d') == []
    assert not (tmp_path / 'root/.kube/config').exists()
    assert state.leftovers(str(tmp_path), ['/etc/cni/net.d', '/root/.kube/config']) == []


# What kubeadm reset leaves: kube-vip's VIP on the interface of the node that held it.
IP_ADDR_SHOW = (
    "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n"
    "1: lo    inet6 ::1/128 scope host \\       valid_lft forever preferred_lft forever\n"
    "2: eth0    inet 198.51.100.11/24 brd 198.51.100.255 scope global eth0\\       valid_lft forever\n"
    "2: eth0    inet 198.51.100.254/32 scope global deprecated eth0\\       valid_lft forever preferred_lft 0sec\n"
    "2: eth0    inet6 2001:db8::10/128 scope global deprecated \\       valid_lft forever preferred_lft 0sec\n"
    "5: cni0    inet 10.244.0.1/24 brd 10.244.0.255 scope global cni0\\       valid_lft forever preferred_lft forever\n"
)


@pytest.mark.parametrize('env, expected', [
    ('    - name: address\n      value: 198.51.100.254\n', ['198.51.100.254']),
    ('    - name: address\n      value: "198.51.100.254,2001:db8::10"\n', ['198.51.100.254', '2001:db8::10']),
    ('    - name: vip_address\n      value: 198.51.100.254\n', ['198.51.100.254']),  # kube-vip before v0.5
    ('    - name: address\n      value: api.example.test\n', []),  # a DNS name cannot be matched
    ('    - name: vip_interface\n      value: eth0\n', []),
])
def test_kube_vip_addresses(tmp_path, env, expected):
    h.put(str(tmp_path), state.KUBE_VIP_MANIFEST, 'spec:\n  containers:\n  - env:\n' + env)
    assert [str(address) for address in state.kube_vip_addresses(str(tmp_path))] == expected


def test_kube_vip_addresses_without_a_manifest(tmp_path):
    assert state.kube_vip_addresses(str(tmp_path)) == []


def test_held_addresses():
    import ipaddress
    wanted = [ipaddress.ip_address('198.51.100.254'), ipaddress.ip_address('2001:db8::10')]
    assert state.held_addresses(IP_ADDR_SHOW, wanted) == [('198.51.100.254/32', 'eth0'), ('2001:db8::10/128', 'eth0')]
    assert state.held_addresses(IP_ADDR_SHOW, [ipaddress.ip_address('198.51.100.253')]) == []
    assert state.held_addresses('4: eth0@if12    inet 198.51.100.254/32 scope global eth0\n', wanted[:1]) == [
        ('198.51.100.254/32', 'eth0')]
