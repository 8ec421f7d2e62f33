# -*- coding: utf-8 -*-
"""kubectl on a control plane (module_utils/_kubectl): argv, the local API server, what a drain would evict."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fixtures', 'kubeadm'))

import harness as h  # noqa: E402

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubectl as kubectl  # noqa: E402

APISERVER = (
    'apiVersion: v1\nkind: Pod\nmetadata:\n  annotations:\n    kubeadm.kubernetes.io/kube-apiserver.advertise-address'
    '.endpoint: 198.51.100.11:6443\nspec:\n  containers:\n  - command:\n    - kube-apiserver\n'
    '    - --advertise-address=198.51.100.11\n    - --secure-port=6443\n'
)


def node_item(name, ready=True, control_plane=False, unschedulable=False, kubelet='v1.37.2', drained_for=None):
    labels = {'kubernetes.io/hostname': name}
    if control_plane:
        labels[kubectl.CONTROL_PLANE_LABEL] = ''
    annotations = {kubectl.DRAINED_FOR_ANNOTATION: drained_for} if drained_for else {}
    return {
        'metadata': {'name': name, 'labels': labels, 'annotations': annotations},
        'spec': {'unschedulable': True} if unschedulable else {},
        'status': {
            'conditions': [
                {'type': 'MemoryPressure', 'status': 'False'},
                {'type': 'Ready', 'status': 'True' if ready else 'Unknown'},
            ],
            'nodeInfo': {'kubeletVersion': kubelet},
        },
    }


def pod_item(name, namespace='default', owner=None, mirror=False, phase='Running'):
    metadata = {'name': name, 'namespace': namespace}
    if owner:
        metadata['ownerReferences'] = [{'kind': owner, 'name': 'x'}]
    if mirror:
        metadata['annotations'] = {kubectl.MIRROR_ANNOTATION: 'abc'}
    return {'metadata': metadata, 'status': {'phase': phase}}


def test_the_local_api_server_of_kube_apiserver_yaml(tmp_path):
    h.put(tmp_path, '/etc/kubernetes/manifests/kube-apiserver.yaml', APISERVER)
    assert kubectl.local_server(str(tmp_path)) == 'https://198.51.100.11:6443'
    h.put(tmp_path, '/etc/kubernetes/manifests/kube-apiserver.yaml', APISERVER.replace('198.51.100.11', '2001:db8::11'))
    assert kubectl.local_server(str(tmp_path)) == 'https://[2001:db8::11]:6443'


def test_no_kube_apiserver_yaml_is_a_sentence(tmp_path):
    with pytest.raises(
        kubectl.KubectlError,
        match=r'kube-apiserver.yaml names no --advertise-address: this node is not ' r'a kubeadm control plane',
    ):
        kubectl.local_server(str(tmp_path))


def test_argv():
    base = kubectl.base_argv('/usr/bin/kubectl', '/etc/kubernetes/admin.conf', 'https://198.51.100.11:6443')
    assert base == [
        '/usr/bin/kubectl',
        '--kubeconfig',
        '/etc/kubernetes/admin.conf',
        '--server',
        'https://198.51.100.11:6443',
    ]
    assert kubectl.drain_argv(base, 'cp3', 300)[len(base) :] == [
        'drain',
        'cp3',
        '--ignore-daemonsets',
        '--delete-emptydir-data',
        '--force',
        '--timeout=300s',
    ]
    assert kubectl.delete_node_argv(base, 'cp3')[len(base) :] == ['delete', 'node', 'cp3', '--ignore-not-found']
    assert kubectl.pods_on_node_argv(base, 'cp3')[len(base) :] == [
        'get',
        'pods',
        '--all-namespaces',
        '--field-selector',
        'spec.nodeName=cp3',
        '-o',
        'json',
    ]


def test_nodes():
    text = json.dumps(
        {'items': [node_item('cp1', control_plane=True),
                   node_item('w1', ready=False, unschedulable=True, kubelet='v1.36.3', drained_for='upgrade')]}
    )
    assert kubectl.parse_nodes(text) == [
        {'name': 'cp1', 'ready': True, 'control_plane': True, 'unschedulable': False, 'kubelet_version': 'v1.37.2',
         'drained_for': None},
        {'name': 'w1', 'ready': False, 'control_plane': False, 'unschedulable': True, 'kubelet_version': 'v1.36.3',
         'drained_for': 'upgrade'},
    ]
    assert kubectl.parse_node('') is None  # --ignore-not-found prints nothing
    assert kubectl.parse_node(json.dumps(node_item('cp2')))['name'] == 'cp2'


def test_what_a_drain_evicts():
    text = json.dumps(
        {
            'items': [
                pod_item('kube-apiserver-cp3', 'kube-system', mirror=True),
                pod_item('kube-proxy-abcde', 'kube-system', owner='DaemonSet'),
                pod_item('coredns-6c8d7f4b9d-2kq7x', 'kube-system', owner='ReplicaSet'),
                pod_item('job-x', owner='Job', phase='Succeeded'),
                pod_item('bare'),
            ]
        }
    )
    assert kubectl.evictable_pods(text) == ['default/bare', 'kube-system/coredns-6c8d7f4b9d-2kq7x']


def test_output_that_is_no_json():
    with pytest.raises(kubectl.KubectlError, match=r"^kubectl printed no JSON for the Nodes: 'error: x'"):
        kubectl.parse_nodes('error: x')


def test_a_failed_kubectl_is_a_sentence():
    with pytest.raises(kubectl.KubectlError, match=r'^kubectl drain w1 failed \(kubectl exit 1\): error: cannot evict'):
        kubectl.run_checked(
            lambda argv: (1, '', 'error: cannot evict pod as it would violate the pod\'s disruption ' 'budget.\n'),
            ['kubectl'],
            'kubectl drain w1',
        )
