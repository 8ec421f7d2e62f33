# -*- coding: utf-8 -*-
"""The upgrade's modules' main(): upgrade_plan, kubeadm_upgrade, and cluster_node's drain for a reason and its
uncordon. Each case names the commands expected, what they return, and the result."""

import json
import re
from unittest import mock

import pytest

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _cluster as cluster
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubectl as kubectl
from ansible_collections.vipadm.kubeadm.plugins.modules import cluster_node, kubeadm_upgrade, upgrade_plan
from tests.unit.modules.test_day2_modules import KUBECTL, control_plane, h, run_module  # noqa: F401

CONFIGMAP = KUBECTL + ['get', 'configmap', 'kubeadm-config', '--namespace', 'kube-system', '-o',
                       'jsonpath={.data.ClusterConfiguration}']
NODES = KUBECTL + ['get', 'nodes', '-o', 'json']
CLUSTER_CONFIGURATION = ('apiServer: {}\napiVersion: kubeadm.k8s.io/v1beta4\ncontrolPlaneEndpoint: 198.51.100.10:6443\n'
                         'kind: ClusterConfiguration\nkubernetesVersion: v1.36.3\n')


def node(name, kubelet='v1.36.3', unschedulable=False, drained_for=None, ready=True):
    return {'metadata': {'name': name, 'labels': {},
                         'annotations': {kubectl.DRAINED_FOR_ANNOTATION: drained_for} if drained_for else {}},
            'spec': {'unschedulable': True} if unschedulable else {},
            'status': {'conditions': [{'type': 'Ready', 'status': 'True' if ready else 'False'}],
                       'nodeInfo': {'kubeletVersion': kubelet}}}


def report(host, role='control_plane'):
    return {'host': host, 'name': host, 'role': role, 'kubeadm_version': 'v1.36.3',
            'kubelet_version': 'Kubernetes v1.36.3', 'api_server_version': 'v1.36.3' if role == 'control_plane' else None}


# --- upgrade_plan ---------------------------------------------------------------------------------------------

def test_upgrade_plan_reads_the_cluster_and_plans(control_plane, capsys):
    root, _ca = control_plane
    calls = [(CONFIGMAP, 0, CLUSTER_CONFIGURATION, ''),
             (NODES, 0, json.dumps({'items': [node('cp1'), node('worker1')]}), '')]
    result = run_module(upgrade_plan, {'version': '1.37.2', 'nodes': [report('cp1'), report('worker1', 'worker')]},
                        calls, root, capsys)
    assert result['changed'] is False and result['cluster'] == '1.36.3' and result['apply_host'] == 'cp1'
    assert result['nodes']['worker1']['kubeadm_upgrade'] == 'node'
    assert result['steps'][1] == ('worker1: install kubeadm 1.37.2, kubeadm upgrade node, drain, kubelet and kubectl '
                                  '1.37.2, restart the kubelet, uncordon')


def test_upgrade_plan_refuses_a_downgrade_and_shows_what_it_read(control_plane, capsys):
    root, _ca = control_plane
    calls = [(CONFIGMAP, 0, CLUSTER_CONFIGURATION, ''), (NODES, 0, json.dumps({'items': [node('cp1')]}), '')]
    result = run_module(upgrade_plan, {'version': '1.35.8', 'nodes': [report('cp1')]}, calls, root, capsys)
    assert result['failed'] is True and 'that is a downgrade' in result['msg']
    assert result['cluster_version'] == 'v1.36.3' and result['listed_nodes'][0]['name'] == 'cp1'


def test_upgrade_plan_fails_with_kubectls_error(control_plane, capsys):
    root, _ca = control_plane
    calls = [(CONFIGMAP, 1, '', 'Error from server (NotFound): configmaps "kubeadm-config" not found\n')]
    result = run_module(upgrade_plan, {'version': '1.37.2', 'nodes': [report('cp1')]}, calls, root, capsys)
    assert result['failed'] is True and 'configmaps "kubeadm-config" not found' in result['msg']


# --- kubeadm_upgrade ------------------------------------------------------------------------------------------

KUBEADM = '/usr/bin/kubeadm'
APPLY = [KUBEADM, 'upgrade', 'apply', 'v1.37.2', '--yes', '--ignore-preflight-errors=SystemVerification']


def manifest(root, version):
    h.put(root, '/etc/kubernetes/manifests/kube-apiserver.yaml',
          'spec:\n  containers:\n  - image: registry.k8s.io/kube-apiserver:%s\n' % version)


def test_kubeadm_upgrade_apply_runs_kubeadm(tmp_path, capsys):
    manifest(tmp_path, 'v1.36.3')
    result = run_module(kubeadm_upgrade, {'action': 'apply', 'version': '1.37.2',
                                          'ignore_preflight_errors': ['SystemVerification']},
                        [(APPLY, 0, '[upgrade] SUCCESS! A control plane node of your cluster was upgraded\n', '')],
                        tmp_path, capsys)
    assert result['changed'] is True and 'SUCCESS' in result['stdout'] and result['version'] == '1.37.2'


def test_kubeadm_upgrade_apply_fails_with_kubeadms_reason(tmp_path, capsys):
    manifest(tmp_path, 'v1.36.3')
    out = '[upgrade/preflight] Running preflight checks\n'
    err = ('error: [preflight] Some fatal errors occurred:\n\t[ERROR CreateJob]: Job "upgrade-health-check" in the '
           'namespace "kube-system" did not complete in 1m0s\n')
    result = run_module(kubeadm_upgrade, {'action': 'apply', 'version': '1.37.2',
                                          'ignore_preflight_errors': ['SystemVerification']},
                        [(APPLY, 1, out, err)], tmp_path, capsys)
    assert result['failed'] is True
    assert re.match(r'^kubeadm upgrade apply failed \(exit 1\): \[ERROR CreateJob\]: Job "upgrade-health-check"',
                    result['msg']), result['msg']
    assert result['stderr_tail'][0].startswith('error: [preflight]')


def test_kubeadm_upgrade_node_on_an_upgraded_control_plane_changes_nothing(tmp_path, capsys):
    manifest(tmp_path, 'v1.37.2')
    result = run_module(kubeadm_upgrade, {'action': 'node', 'version': '1.37.2'}, [], tmp_path, capsys)
    assert result['changed'] is False and result['skipped_because'] == 'kube-apiserver.yaml runs 1.37.2 already'


def test_kubeadm_upgrade_node_on_a_worker_runs_kubeadm(tmp_path, capsys):
    result = run_module(kubeadm_upgrade, {'action': 'node', 'version': '1.37.2'},
                        [([KUBEADM, 'upgrade', 'node'], 0, '[upgrade] The configuration for this node was upgraded\n',
                          '')], tmp_path, capsys)
    assert result['changed'] is True


@pytest.mark.parametrize('installed, calls', [
    ('v1.37.2', [([KUBEADM, 'upgrade', 'plan', 'v1.37.2'], 0, 'Upgrade to the latest version ...\n', '')]),
    ('v1.36.3', []),  # kubeadm of the target is not installed yet in check mode: no plan to ask it for
])
def test_kubeadm_upgrade_apply_in_check_mode_asks_kubeadm_upgrade_plan(tmp_path, capsys, installed, calls):
    manifest(tmp_path, 'v1.36.3')
    result = run_module(kubeadm_upgrade, {'action': 'apply', 'version': '1.37.2'},
                        [([KUBEADM, 'version', '-o', 'short'], 0, installed + '\n', '')] + calls, tmp_path, capsys,
                        check_mode=True)
    assert result['changed'] is True and ('plan' in result) is bool(calls)


def test_kubeadm_upgrade_apply_in_check_mode_fails_with_the_plans_refusal(tmp_path, capsys):
    manifest(tmp_path, 'v1.36.3')
    calls = [([KUBEADM, 'version', '-o', 'short'], 0, 'v1.37.2\n', ''),
             ([KUBEADM, 'upgrade', 'plan', 'v1.37.2'], 1, '',
              'error: [upgrade/health] FATAL: [preflight] Some fatal errors occurred:\n\t[ERROR ControlPlaneNodesReady]: '
              'there are NotReady control-planes in the cluster: [cp2]\n')]
    result = run_module(kubeadm_upgrade, {'action': 'apply', 'version': '1.37.2'}, calls, tmp_path, capsys,
                        check_mode=True)
    assert result['failed'] is True and 'NotReady control-planes in the cluster: [cp2]' in result['msg']


# --- cluster_node: drained for a reason, uncordoned -----------------------------------------------------------

GET_CP2 = KUBECTL + ['get', 'node', 'cp2', '--ignore-not-found', '-o', 'json']
PODS_CP2 = KUBECTL + ['get', 'pods', '--all-namespaces', '--field-selector', 'spec.nodeName=cp2', '-o', 'json']
MARK = KUBECTL + ['annotate', 'node', 'cp2', '--overwrite', 'vipadm.kubeadm/drained-for=upgrade']
UNMARK = KUBECTL + ['annotate', 'node', 'cp2', '--overwrite', 'vipadm.kubeadm/drained-for-']
DRAIN = KUBECTL + ['drain', 'cp2', '--ignore-daemonsets', '--delete-emptydir-data', '--force', '--timeout=300s']
UNCORDON = KUBECTL + ['uncordon', 'cp2']
ONE_POD = json.dumps({'items': [{'metadata': {'name': 'coredns-1', 'namespace': 'kube-system',
                                              'ownerReferences': [{'kind': 'ReplicaSet'}]},
                                 'status': {'phase': 'Running'}}]})
NO_POD = json.dumps({'items': []})


def doc(**kwargs):
    return json.dumps(node('cp2', **kwargs))


CASES = [
    dict(id='drain-marks-first', state='drained',
         calls=[(GET_CP2, 0, doc(), ''), (PODS_CP2, 0, ONE_POD, ''), (MARK, 0, '', ''), (DRAIN, 0, 'drained\n', '')],
         changed=True),
    dict(id='drain-of-a-node-cordoned-by-somebody-else-does-not-mark-it', state='drained',
         calls=[(GET_CP2, 0, doc(unschedulable=True), ''), (PODS_CP2, 0, ONE_POD, ''), (DRAIN, 0, 'drained\n', '')],
         changed=True),
    dict(id='drained-already', state='drained',
         calls=[(GET_CP2, 0, doc(unschedulable=True, drained_for='upgrade'), ''), (PODS_CP2, 0, NO_POD, '')],
         changed=False),
    dict(id='uncordon-once-ready-on-the-new-kubelet', state='uncordoned',
         calls=[(GET_CP2, 0, doc(unschedulable=True, drained_for='upgrade'), ''),
                (GET_CP2, 0, doc(kubelet='v1.37.2', ready=False, unschedulable=True, drained_for='upgrade'), ''),
                (GET_CP2, 0, doc(kubelet='v1.37.2', unschedulable=True, drained_for='upgrade'), ''),
                (UNCORDON, 0, 'node/cp2 uncordoned\n', ''), (UNMARK, 0, '', '')],
         changed=True, polls=2),
    dict(id='the-api-server-restarting-with-the-kubelet-is-waited-for', state='uncordoned',
         calls=[(GET_CP2, 0, doc(unschedulable=True, drained_for='upgrade'), ''),
                (GET_CP2, 1, '', 'The connection to the server 198.51.100.11:6443 was refused\n'),
                (GET_CP2, 0, doc(kubelet='v1.37.2', unschedulable=True, drained_for='upgrade'), ''),
                (UNCORDON, 0, 'node/cp2 uncordoned\n', ''), (UNMARK, 0, '', '')],
         changed=True, polls=2),
    dict(id='the-first-read-waits-for-the-api-server-too', state='uncordoned',
         calls=[(GET_CP2, 1, '', 'The connection to the server 198.51.100.11:6443 was refused\n'),
                (GET_CP2, 0, doc(kubelet='v1.37.2', unschedulable=True, drained_for='upgrade'), ''),
                (UNCORDON, 0, 'node/cp2 uncordoned\n', ''), (UNMARK, 0, '', '')],
         changed=True, polls=1),
    dict(id='an-api-server-that-never-answers-again', state='uncordoned', timeout=0,
         calls=[(GET_CP2, 0, doc(unschedulable=True, drained_for='upgrade'), '')],
         fail=r'^Node cp2 is not Ready on kubelet 1\.37\.2 after 0 s \(it reports kubelet v1\.36\.3, Ready: True\)'),
    dict(id='not-uncordoned-when-somebody-else-cordoned-it', state='uncordoned',
         calls=[(GET_CP2, 0, doc(kubelet='v1.37.2', unschedulable=True), '')], changed=False),
    dict(id='uncordoned-already', state='uncordoned', calls=[(GET_CP2, 0, doc(kubelet='v1.37.2'), '')],
         changed=False),
    dict(id='uncordon-check-mode', state='uncordoned', check_mode=True,
         calls=[(GET_CP2, 0, doc(unschedulable=True, drained_for='upgrade'), '')], changed=True),
    dict(id='not-ready-in-time', state='uncordoned', timeout=0,
         calls=[(GET_CP2, 0, doc(kubelet='v1.37.2', ready=False, unschedulable=True, drained_for='upgrade'), '')],
         fail=r'^Node cp2 is not Ready on kubelet 1\.37\.2 after 0 s \(it reports kubelet v1\.37\.2, Ready: False\), '
              r'so it stays cordoned: check the kubelet on it'),
]


@pytest.mark.parametrize('case', CASES, ids=[case['id'] for case in CASES])
def test_cluster_node_for_the_upgrade(case, control_plane, capsys):
    root, _ca = control_plane
    slept = []
    with mock.patch.object(cluster.time, 'sleep', slept.append):
        result = run_module(cluster_node, {'name': 'cp2', 'state': case['state'], 'reason': 'upgrade',
                                           'kubelet_version': '1.37.2', 'timeout': case.get('timeout', 300)},
                            case['calls'], root, capsys, check_mode=case.get('check_mode', False))
    if case.get('fail'):
        assert result['failed'] is True and re.search(case['fail'], result['msg']), result['msg']
        return
    assert result['changed'] is case['changed'], result
    assert len(slept) == case.get('polls', 0)
