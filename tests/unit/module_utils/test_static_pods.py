# -*- coding: utf-8 -*-
"""Restarting a control plane's static Pods (module_utils/_static_pods) against a fake kubelet: it runs a process per
manifest in the static Pod directory, stops it some polls after the manifest left, starts a new one some polls after
it came back. The order (kube-vip first out, last in), the resumption of a stopped run, the refusals and timeouts."""

import os
import socket
import ssl
import sys
import threading

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures', 'kubeadm'))

import harness as h  # noqa: E402  (certificates)

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _static_pods as static_pods  # noqa: E402
from ansible_collections.vipadm.kubeadm.plugins.module_utils._kubeadm import KubeadmError  # noqa: E402

ALL = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kube-vip']
ETCD_MANIFEST = 'apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - command:\n    - etcd\n    - --name=cp1\n'


class Kubelet:
    """The processes of a node's static Pods: ``processes()`` is what /proc would list at each poll."""

    def __init__(self, root, delay=2, stops=True):
        self.root, self.delay, self.stops = root, delay, stops
        self.running = {}  # pod -> pid
        self.pending = {}  # pod -> polls left before the kubelet acts
        self.next_pid = 100
        self.seen = []  # the manifests in the static Pod directory at each poll
        for name in self.manifests():
            self.start(name)

    def manifests(self):
        directory = os.path.join(self.root, 'etc/kubernetes/manifests')
        return sorted(name[:-5] for name in os.listdir(directory) if name.endswith('.yaml'))

    def start(self, name):
        self.next_pid += 1
        self.running[name] = self.next_pid

    def processes(self):
        present = self.manifests()
        self.seen.append(tuple(present))
        for name in set(present) ^ set(self.running):
            self.pending.setdefault(name, self.delay)
        for name in list(self.pending):
            if (name in present) == (name in self.running):
                del self.pending[name]
                continue
            self.pending[name] -= 1
            if self.pending[name] <= 0:
                del self.pending[name]
                if name in present:
                    self.start(name)
                elif self.stops:
                    del self.running[name]
        table = dict((pid, name) for name, pid in self.running.items())
        table[1] = 'pid1'
        return table


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def node(tmp_path, pods=ALL):
    for name in pods:
        path = tmp_path / 'etc/kubernetes/manifests' / ('%s.yaml' % name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(ETCD_MANIFEST if name == 'etcd' else 'kind: Pod\n')
    return str(tmp_path)


def healthy_members():
    return [
        {'name': name, 'id': str(i), 'learner': False, 'healthy': True} for i, name in enumerate(('cp1', 'cp2', 'cp3'))
    ]


def run(root, kubelet, params=None, checks=None, check_mode=False, members=healthy_members):
    clock = Clock()
    params = dict({'pods': list(ALL), 'timeout': 30, 'state': 'restarted'}, **(params or {}))
    return static_pods.restart(
        params,
        root,
        check_mode=check_mode,
        processes=kubelet.processes,
        checks=checks if checks is not None else {},
        members=members,
        clock=clock,
        sleep=clock.sleep,
    )


def test_every_pod_restarts_kube_vip_first_out_and_last_in(tmp_path):
    root = node(tmp_path)
    kubelet = Kubelet(root)
    before = dict(kubelet.running)
    checked = []
    checks = {
        'kube-apiserver': lambda: (checked.append('kube-apiserver') or True, 'serves apiserver.crt'),
        'etcd': lambda: (checked.append('etcd') or True, 'serves server.crt'),
    }
    result = run(root, kubelet, checks=checks)
    assert result['changed'] is True and result['pods'] == ALL
    for name in ALL:
        assert result['restarted'][name]['before'] == [before[name]]
        assert result['restarted'][name]['after'] == [kubelet.running[name]] != [before[name]]
    # what the kubelet saw, without repeats: kube-vip left alone first, came back alone last
    seen = [state for index, state in enumerate(kubelet.seen) if index == 0 or kubelet.seen[index - 1] != state]
    assert seen == [tuple(ALL), tuple(ALL[:4]), (), tuple(ALL[:4]), tuple(ALL)]
    assert sorted(set(checked)) == ['etcd', 'kube-apiserver']
    assert result['checks'] == {'etcd': 'serves server.crt', 'kube-apiserver': 'serves apiserver.crt'}
    assert os.listdir(os.path.join(root, 'etc/kubernetes/vipadm/static-pods-restarting')) == []


def test_a_run_stopped_half_way_is_finished_by_the_next(tmp_path):
    root = node(tmp_path)
    kubelet = Kubelet(root)
    static_pods.take_out(root, ['kube-vip', 'etcd'])  # a run killed after moving these two out
    assert static_pods.left_out(root) == ['etcd', 'kube-vip']
    kubelet.processes()
    result = run(root, kubelet, members=lambda: pytest.fail('no quorum check for an etcd that is already out'))
    assert result['resumed'] == ['etcd', 'kube-vip'] and result['pods'] == ALL
    assert kubelet.manifests() == ALL and sorted(kubelet.running) == ALL


def test_check_mode_moves_nothing(tmp_path):
    root = node(tmp_path)
    kubelet = Kubelet(root)
    result = run(root, kubelet, check_mode=True)
    assert result['changed'] is True and result['pods'] == ALL and result['restarted'] == {}
    assert kubelet.manifests() == ALL and kubelet.seen == []


def test_a_kubelet_that_does_not_stop_the_pods_times_out_and_everything_goes_back(tmp_path):
    root = node(tmp_path)
    kubelet = Kubelet(root, stops=False)
    with pytest.raises(
        KubeadmError,
        match=r'^The kubelet did not stop kube-vip within 30 s: .*Every manifest was put '
        r'back in /etc/kubernetes/manifests\.$',
    ):
        run(root, kubelet)
    assert kubelet.manifests() == ALL


def test_an_api_server_that_does_not_answer_fails_and_everything_goes_back(tmp_path):
    root = node(tmp_path)
    kubelet = Kubelet(root)
    with pytest.raises(
        KubeadmError, match=r'^kube-apiserver runs again but does not work within 30 s: nothing answers'
    ):
        run(root, kubelet, checks={'kube-apiserver': lambda: (False, 'nothing answers TLS on 198.51.100.11:6443')})
    assert kubelet.manifests() == ALL


def test_stop_kube_vip_and_leave_it_out(tmp_path):
    root = node(tmp_path)
    kubelet = Kubelet(root)
    result = run(root, kubelet, params={'pods': ['kube-vip'], 'state': 'stopped'})
    assert result['changed'] is True and result['restarted']['kube-vip']['after'] == []
    assert 'kube-vip' not in kubelet.running and kubelet.manifests() == ALL[:4]
    assert static_pods.left_out(root) == ['kube-vip']
    again = run(root, kubelet, params={'pods': ['kube-vip'], 'state': 'stopped'})
    assert again['changed'] is False and again['pods'] == []


def test_a_node_without_kube_vip_restarts_the_others(tmp_path):
    root = node(tmp_path, ALL[:4])
    result = run(root, Kubelet(root))
    assert result['pods'] == ALL[:4]
    worker = str(tmp_path / 'worker')
    os.makedirs(os.path.join(worker, 'etc/kubernetes/manifests'))
    stopped = run(worker, Kubelet(worker), params={'pods': ['kube-vip'], 'state': 'stopped'})
    assert stopped == {'changed': False, 'restarted': {}, 'resumed': [], 'pods': [], 'checks': {}, 'elapsed': 0.0}


def test_a_node_that_is_no_control_plane_is_refused(tmp_path):
    root = node(tmp_path, ['kube-vip'])
    with pytest.raises(
        KubeadmError,
        match=r'^No static Pod manifest /etc/kubernetes/manifests/etcd.yaml, .*: it is not ' r'a kubeadm control plane',
    ):
        run(root, Kubelet(root))


def test_etcd_does_not_stop_when_the_others_are_no_quorum(tmp_path):
    root = node(tmp_path)
    kubelet = Kubelet(root)
    members = [
        {'name': 'cp1', 'id': '1', 'learner': False, 'healthy': True},
        {'name': 'cp2', 'id': '2', 'learner': False, 'healthy': True},
        {'name': 'cp3', 'id': '3', 'learner': False, 'healthy': False},
    ]
    with pytest.raises(
        KubeadmError,
        match=r'^Restarting etcd on cp1 would stop etcd: it has 3 members, 2 are needed, '
        r'and without cp1 only 1 answer \(not answering: cp3\)\. Nothing was changed\.',
    ):
        run(root, kubelet, members=lambda: members)
    assert kubelet.manifests() == ALL and kubelet.seen == []


def test_a_tls_server_serves_the_certificate_on_disk_or_another(tmp_path):
    """serves_file compares the DER the server presents with the first certificate of the file (the restart's check
    that the API server and etcd use the renewed certificates)."""
    ca_pem, ca_key, _hash = h.make_ca('etcd-ca')
    served, key = h.make_server_cert(ca_key, ca_pem, ip_sans=['127.0.0.1'])
    renewed, _key = h.make_server_cert(ca_key, ca_pem, ip_sans=['127.0.0.1'])
    (tmp_path / 'served.crt').write_text(served)
    (tmp_path / 'served.key').write_text(key)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(tmp_path / 'served.crt'), str(tmp_path / 'served.key'))
    listener = context.wrap_socket(socket.create_server(('127.0.0.1', 0)), server_side=True)
    port = listener.getsockname()[1]

    def serve():
        for _ in range(2):
            try:
                connection, _address = listener.accept()
                connection.close()
            except OSError:
                return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    root = str(tmp_path / 'node')
    h.put(root, '/etc/kubernetes/pki/apiserver.crt', served)
    assert static_pods.serves_file(root, '127.0.0.1', port, '/etc/kubernetes/pki/apiserver.crt') == (
        True,
        '127.0.0.1:%d serves /etc/kubernetes/pki/apiserver.crt' % port,
    )
    h.put(root, '/etc/kubernetes/pki/apiserver.crt', renewed)
    assert static_pods.serves_file(root, '127.0.0.1', port, '/etc/kubernetes/pki/apiserver.crt') == (
        False,
        '127.0.0.1:%d serves another certificate than /etc/kubernetes/pki/apiserver.crt' % port,
    )
    listener.close()
    assert static_pods.serves_file(root, '127.0.0.1', port, '/etc/kubernetes/pki/apiserver.crt')[1].startswith(
        'nothing answers TLS on 127.0.0.1:%d' % port
    )
