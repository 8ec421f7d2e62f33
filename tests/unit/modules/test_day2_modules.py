# -*- coding: utf-8 -*-
"""The day-2 modules' main(): node_removal_plan, etcd_member, cluster_node, certs_expiration, certs_renew,
restart_static_pods. Each case names the commands expected, what they return, and the result (community.general's
style); etcd is a fake client (module_utils/_etcd is tested against an HTTPS gateway in test_etcd.py)."""

import json
import os
import re
import sys
from unittest import mock

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'fixtures', 'kubeadm'))

import harness as h  # noqa: E402

from ansible.module_utils import basic  # noqa: E402
from ansible.module_utils.testing import patch_module_args  # noqa: E402

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _etcd as etcd  # noqa: E402
from ansible_collections.vipadm.kubeadm.plugins.modules import certs_expiration, certs_renew  # noqa: E402
from ansible_collections.vipadm.kubeadm.plugins.modules import (
    cluster_node,
    etcd_member,
    node_removal_plan,
)  # noqa: E402
from ansible_collections.vipadm.kubeadm.plugins.modules import restart_static_pods  # noqa: E402

FIXTURES = os.path.join(HERE, '..', 'fixtures', 'day2')
KUBECTL = ['/usr/bin/kubectl', '--kubeconfig', '/etc/kubernetes/admin.conf', '--server', 'https://198.51.100.11:6443']
APISERVER = 'spec:\n  containers:\n  - command:\n    - kube-apiserver\n    - --advertise-address=198.51.100.11\n'


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding='utf-8') as handle:
        return handle.read()


def run_module(module, params, calls, root, capsys, check_mode=False, client=None):
    """module.main() with the expected commands (argv, rc, stdout, stderr); the result it printed."""
    pending = list(calls)

    def fake_run_command(self, args, **kwargs):
        assert pending, 'unexpected command: %s' % (args,)
        argv, rc, stdout, stderr = pending.pop(0)
        assert list(args) == argv
        return rc, stdout, stderr

    args = dict(params, _ansible_check_mode=check_mode, _ansible_diff=False)
    with patch_module_args(args), mock.patch.object(
        basic.AnsibleModule, 'run_command', fake_run_command
    ), mock.patch.object(
        basic.AnsibleModule, 'get_bin_path', side_effect=lambda name, *a, **k: '/usr/bin/' + name
    ), mock.patch.object(
        module, 'FILESYSTEM_ROOT', str(root)
    ), mock.patch.object(
        etcd, 'Client', lambda *a, **k: client
    ):
        with pytest.raises(SystemExit):
            module.main()
    assert not pending, 'commands not run: %s' % pending
    return json.loads(capsys.readouterr().out)


def warning_texts(result):
    """The warnings' sentences (ansible-core 2.19+ returns them as summaries; earlier ones warned in the same process
    are still listed, so tests look for their own)."""
    return [w['event']['msg'] if isinstance(w, dict) else w for w in result.get('warnings', [])]


class FakeEtcd:
    def __init__(self, spec):
        """'cp1 cp2 -cp3': members, '-' for one that does not answer."""
        self.members_ = [
            {
                'id': str(10 + i),
                'name': word.lstrip('-'),
                'peer_urls': [],
                'client_urls': [],
                'learner': False,
                'down': word.startswith('-'),
            }
            for i, word in enumerate(spec.split())
        ]
        self.removed = []

    def members(self):
        return [dict((k, v) for k, v in m.items() if k != 'down') for m in self.members_]

    def healthy(self, member, timeout=2.0):
        return not [m for m in self.members_ if m['id'] == member['id']][0]['down']

    def members_with_health(self, timeout=2.0):
        return [dict(m, healthy=self.healthy(m)) for m in self.members()]

    def remove(self, member_id):
        self.removed.append(member_id)
        self.members_ = [m for m in self.members_ if m['id'] != member_id]
        return self.members()


def nodes_json(*names, not_ready=()):
    return json.dumps(
        {
            'items': [
                {
                    'metadata': {
                        'name': name,
                        'labels': ({'node-role.kubernetes.io/control-plane': ''} if name.startswith('cp') else {}),
                    },
                    'spec': {},
                    'status': {'conditions': [{'type': 'Ready', 'status': 'False' if name in not_ready else 'True'}]},
                }
                for name in names
            ]
        }
    )


@pytest.fixture
def control_plane(tmp_path):
    h.put(tmp_path, '/etc/kubernetes/manifests/kube-apiserver.yaml', APISERVER)
    ca_pem = h.make_ca()[0]
    h.put(tmp_path, '/etc/kubernetes/pki/ca.crt', ca_pem)
    return tmp_path, ca_pem


# --- node_removal_plan ----------------------------------------------------------------------------------------


def test_plan_for_a_dead_control_plane(control_plane, capsys):
    root, _ca = control_plane
    result = run_module(
        node_removal_plan,
        {'node': 'cp3', 'reachable': False, 'via': 'cp1'},
        [(KUBECTL + ['get', 'nodes', '-o', 'json'], 0, nodes_json('cp1', 'cp2', 'cp3', not_ready=['cp3']), '')],
        root,
        capsys,
        client=FakeEtcd('cp1 cp2 -cp3'),
    )
    assert result['changed'] is False and result['actions'] == ['remove_etcd_member', 'delete_node']
    assert result['member'] == {'name': 'cp3', 'id': '12', 'peer_urls': [], 'learner': False, 'healthy': False}
    assert result['api_server'] == 'https://198.51.100.11:6443'
    assert any(w.startswith('etcd will have 2 members (cp1, cp2)') for w in warning_texts(result))


def test_plan_refusal_runs_no_kubectl_and_shows_the_members(control_plane, capsys):
    root, _ca = control_plane
    result = run_module(
        node_removal_plan,
        {'node': 'cp2', 'reachable': True, 'node_state': 'control_plane'},
        [],
        root,
        capsys,
        client=FakeEtcd('cp1 cp2 -cp3'),
    )
    assert result['failed'] is True and result['msg'].startswith("Removing cp2 would break etcd's quorum")
    assert [m['name'] for m in result['etcd_members']] == ['cp1', 'cp2', 'cp3']


def test_plan_refuses_a_node_of_another_cluster(control_plane, capsys):
    root, _ca = control_plane
    other_ca = h.make_ca('another-cluster')[0]
    result = run_module(
        node_removal_plan,
        {'node': 'w1', 'reachable': True, 'node_state': 'worker', 'node_ca_cert': other_ca, 'via': 'cp1'},
        [(KUBECTL + ['get', 'nodes', '-o', 'json'], 0, nodes_json('cp1'), '')],
        root,
        capsys,
        client=FakeEtcd('cp1'),
    )
    assert result['failed'] is True and result['msg'].startswith('w1 holds the kubeadm files of another cluster')


def test_plan_for_a_worker_of_this_cluster(control_plane, capsys):
    root, ca = control_plane
    result = run_module(
        node_removal_plan,
        {'node': 'w1', 'reachable': True, 'node_state': 'worker', 'node_ca_cert': ca},
        [(KUBECTL + ['get', 'nodes', '-o', 'json'], 0, nodes_json('cp1', 'w1'), '')],
        root,
        capsys,
        client=FakeEtcd('cp1'),
    )
    assert result['actions'] == ['drain', 'reset', 'delete_node'] and result['control_plane'] is False


# --- etcd_member ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize('check_mode', [False, True])
def test_etcd_member_absent(tmp_path, capsys, check_mode):
    client = FakeEtcd('cp1 cp2 -cp3')
    result = run_module(etcd_member, {'name': 'cp3'}, [], tmp_path, capsys, check_mode=check_mode, client=client)
    assert result['changed'] is True and result['removed']['name'] == 'cp3' and result['members'] == ['cp1', 'cp2']
    assert client.removed == ([] if check_mode else ['12'])


def test_etcd_member_already_gone(tmp_path, capsys):
    result = run_module(etcd_member, {'name': 'cp3'}, [], tmp_path, capsys, client=FakeEtcd('cp1 cp2'))
    assert result['changed'] is False and result['removed'] is None


# --- cluster_node ---------------------------------------------------------------------------------------------

NODE_W1 = json.dumps(
    {
        'metadata': {'name': 'w1', 'labels': {}},
        'spec': {},
        'status': {'conditions': [{'type': 'Ready', 'status': 'True'}]},
    }
)
CORDONED_W1 = NODE_W1.replace('"spec": {}', '"spec": {"unschedulable": true}')
PODS_W1 = json.dumps(
    {
        'items': [
            {
                'metadata': {'name': 'web-1', 'namespace': 'default', 'ownerReferences': [{'kind': 'ReplicaSet'}]},
                'status': {'phase': 'Running'},
            }
        ]
    }
)
NO_PODS = json.dumps({'items': []})
GET_W1 = KUBECTL + ['get', 'node', 'w1', '--ignore-not-found', '-o', 'json']
PODS = KUBECTL + ['get', 'pods', '--all-namespaces', '--field-selector', 'spec.nodeName=w1', '-o', 'json']
DRAIN = KUBECTL + ['drain', 'w1', '--ignore-daemonsets', '--delete-emptydir-data', '--force', '--timeout=300s']
DELETE = KUBECTL + ['delete', 'node', 'w1', '--ignore-not-found']

CLUSTER_NODE_CASES = [
    dict(
        id='drain',
        state='drained',
        calls=[(GET_W1, 0, NODE_W1, ''), (PODS, 0, PODS_W1, ''), (DRAIN, 0, 'node/w1 cordoned\nnode/w1 drained\n', '')],
        changed=True,
        pods=['default/web-1'],
    ),
    dict(
        id='drain-check-mode',
        state='drained',
        check_mode=True,
        calls=[(GET_W1, 0, NODE_W1, ''), (PODS, 0, PODS_W1, '')],
        changed=True,
        pods=['default/web-1'],
    ),
    dict(
        id='drained-already',
        state='drained',
        calls=[(GET_W1, 0, CORDONED_W1, ''), (PODS, 0, NO_PODS, '')],
        changed=False,
        pods=[],
    ),
    dict(
        id='cordoned-with-pods-left',
        state='drained',
        calls=[(GET_W1, 0, CORDONED_W1, ''), (PODS, 0, PODS_W1, ''), (DRAIN, 0, 'node/w1 drained\n', '')],
        changed=True,
        pods=['default/web-1'],
    ),
    dict(id='drain-no-node', state='drained', calls=[(GET_W1, 0, '', '')], changed=False, pods=[]),
    dict(
        id='delete',
        state='absent',
        calls=[(GET_W1, 0, NODE_W1, ''), (DELETE, 0, 'node "w1" deleted\n', '')],
        changed=True,
        pods=[],
    ),
    dict(
        id='delete-check-mode', state='absent', check_mode=True, calls=[(GET_W1, 0, NODE_W1, '')], changed=True, pods=[]
    ),
    dict(id='deleted-already', state='absent', calls=[(GET_W1, 0, '', '')], changed=False, pods=[]),
    dict(
        id='drain-blocked',
        state='drained',
        calls=[
            (GET_W1, 0, NODE_W1, ''),
            (PODS, 0, PODS_W1, ''),
            (
                DRAIN,
                1,
                '',
                "error when evicting pods/\"web-1\" -n \"default\" (will retry after 5s): Cannot evict pod "
                "as it would violate the pod's disruption budget.\nerror: global timeout reached: 5m0s\n",
            ),
        ],
        fail=r'^kubectl drain w1 \(PodDisruptionBudgets may keep pods; raise the timeout or fix them\) failed '
        r'\(kubectl '
        r'exit 1\): .*global timeout reached',
    ),
]


@pytest.mark.parametrize('case', CLUSTER_NODE_CASES, ids=[case['id'] for case in CLUSTER_NODE_CASES])
def test_cluster_node(case, control_plane, capsys):
    root, _ca = control_plane
    result = run_module(
        cluster_node,
        {'name': 'w1', 'state': case['state']},
        case['calls'],
        root,
        capsys,
        check_mode=case.get('check_mode', False),
    )
    if case.get('fail'):
        assert result['failed'] is True and re.search(case['fail'], result['msg'], re.S), result['msg']
        return
    assert result['changed'] is case['changed'] and result['pods'] == case['pods']


# --- certs_expiration, certs_renew ---------------------------------------------------------------------------

CHECK = ['/usr/bin/kubeadm', 'certs', 'check-expiration', '-o', 'json']
RENEW = ['/usr/bin/kubeadm', 'certs', 'renew', 'all']


def run_certs(module, params, report, tmp_path, capsys, check_mode=False):
    """The module with one ``kubeadm certs check-expiration`` answered by the fixture ``report``."""
    calls = [(CHECK, 0, fixture(report), '')]
    return run_module(module, params, calls, tmp_path, capsys, check_mode=check_mode)


def test_certs_expiration_sets_the_fact(tmp_path, capsys):
    result = run_certs(certs_expiration, {'warn_days': 30}, 'check-expiration-joined-v1.37.2.json', tmp_path, capsys)
    facts = result['ansible_facts']['kubeadm_certs']
    assert result['changed'] is False and facts['certificates']['super-admin.conf']['missing'] is True
    assert facts['soonest'] == result['soonest'] and facts['days_left'] == result['days_left'] <= 364
    assert sorted(facts) == ['certificate_authorities', 'certificates', 'days_left', 'expiring', 'soonest']


def test_certs_expiration_warns_under_the_threshold(tmp_path, capsys):
    result = run_certs(certs_expiration, {'warn_days': 4000}, 'check-expiration-joined-v1.37.2.json', tmp_path, capsys)
    found = [w for w in warning_texts(result) if re.match(r'(certificate|CA) \S+ expires 20', w)]
    assert len(set(found)) == 13  # 10 certificates present and 3 CAs
    assert any(w.startswith('CA etcd-ca expires 2036-12-02T19:47:30Z') for w in found)


def test_certs_renew_in_check_mode(tmp_path, capsys):
    result = run_certs(certs_renew, {}, 'check-expiration-init-host-v1.37.2.json', tmp_path, capsys, check_mode=True)
    assert result['changed'] is True and len(result['renewed']) == 11


def test_certs_renew_fails_with_kubeadms_message(tmp_path, capsys):
    text = fixture('check-expiration-init-host-v1.37.2.json')
    result = run_module(
        certs_renew,
        {},
        [(CHECK, 0, text, ''), (RENEW, 1, '', 'error: failed to renew certificate ' 'apiserver: permission denied\n')],
        tmp_path,
        capsys,
    )
    assert result['failed'] is True
    assert result['msg'] == 'kubeadm certs renew all failed: failed to renew certificate apiserver: permission denied.'


# --- restart_static_pods --------------------------------------------------------------------------------------


def test_restart_static_pods_in_check_mode_checks_etcds_quorum(tmp_path, capsys):
    for name in ('etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kube-vip'):
        h.put(tmp_path, '/etc/kubernetes/manifests/%s.yaml' % name, '    - --name=cp1\n' if name == 'etcd' else 'x\n')
    ok = run_module(restart_static_pods, {}, [], tmp_path, capsys, check_mode=True, client=FakeEtcd('cp1 cp2 cp3'))
    assert ok['changed'] is True and ok['pods'][-1] == 'kube-vip' and ok['restarted'] == {}
    refused = run_module(
        restart_static_pods, {}, [], tmp_path, capsys, check_mode=True, client=FakeEtcd('cp1 cp2 -cp3')
    )
    assert refused['failed'] is True and refused['msg'].startswith('Restarting etcd on cp1 would stop etcd')
