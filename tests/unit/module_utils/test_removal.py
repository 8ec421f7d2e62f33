# -*- coding: utf-8 -*-
"""Removing a node: etcd's quorum before and after, the plan of actions, the refusals (module_utils/_removal)."""

import re

import pytest

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _removal as removal


def members(spec):
    """'cp1 cp2 -cp3 ~cp4': cp1, cp2 healthy voters, cp3 a voter that does not answer, cp4 a healthy learner."""
    found = []
    for index, word in enumerate(spec.split()):
        name = word.lstrip('-~')
        found.append(
            {
                'id': str(1000 + index),
                'name': name,
                'peer_urls': ['https://198.51.100.%d:2380' % (11 + index)],
                'client_urls': ['https://198.51.100.%d:2379' % (11 + index)],
                'learner': word.startswith('~'),
                'healthy': not word.startswith('-'),
            }
        )
    return found


def nodes(spec):
    """'cp1 cp2 w1 !cp3': control planes cp*, workers w*, !: not Ready."""
    return [
        {
            'name': word.lstrip('!'),
            'ready': not word.startswith('!'),
            'control_plane': word.lstrip('!').startswith('cp'),
            'unschedulable': False,
        }
        for word in spec.split()
    ]


# (members, removed member) -> None (allowed) or a regex of the refusal
QUORUM = [
    ('cp1 cp2 cp3', 'cp3', None),
    ('cp1 cp2 -cp3', 'cp3', None),  # the dead one goes: 2 of 2 answer after
    (
        'cp1 cp2 -cp3',
        'cp2',
        r"^Removing cp2 would break etcd's quorum: etcd has 3 members \(cp1, cp2, cp3\) and cp3 "
        r"does not answer; without cp2 it would have 2 members of which 1 answer, fewer than the 2 "
        r"it needs\. Nothing was changed\. First bring back cp3, or remove it with the remove_node "
        r"playbook \(it does not answer\), then remove cp2\.$",
    ),
    (
        'cp1 -cp2 -cp3',
        'cp3',
        r'^etcd has no quorum: 1 of its 3 members answer \(cp1; not answering: cp2, cp3\), and 2 '
        r'must answer for any change',
    ),
    ('cp1 -cp2', 'cp2', r'^etcd has no quorum: 1 of its 2 members answer'),
    ('cp1 cp2', 'cp2', None),
    ('cp1', 'cp1', r'^cp1 is the last control plane: its etcd is the only member'),
    ('cp1 cp2 cp3 cp4 cp5', 'cp5', None),
    ('cp1 cp2 cp3 -cp4 -cp5', 'cp5', None),  # 3 of 5 answer; then 3 of 4
    (
        'cp1 cp2 cp3 -cp4 -cp5',
        'cp3',
        r'and cp4, cp5 do not answer; without cp3 it would have 4 members of which 2 '
        r'answer, fewer than the 3 it needs\. .*remove them one at a time',
    ),
    ('cp1 cp2 -cp3 -cp4', 'cp4', r'^etcd has no quorum: 2 of its 4 members answer'),
    ('cp1 cp2 cp3 -cp4', 'cp1', None),  # 3 of 4 answer now, 2 of 3 after
    ('cp1 cp2 ~cp3', 'cp3', None),  # a learner does not vote
    ('cp1 -cp2 ~cp3', 'cp3', None),
    ('cp1 cp2 cp3', 'cp9', None),  # no such member: no membership change
]


@pytest.mark.parametrize(
    'spec, name, refusal', QUORUM, ids=['%s-minus-%s' % (s.replace(' ', '_'), n) for s, n, _ in QUORUM]
)
def test_quorum(spec, name, refusal):
    if refusal is None:
        removal.check_quorum(members(spec), name)
        return
    with pytest.raises(removal.RemovalRefused) as refused:
        removal.check_quorum(members(spec), name)
    assert re.search(refusal, str(refused.value)), str(refused.value)
    assert 'Nothing was changed' in str(refused.value)


def test_quorum_warnings_for_two_and_even_member_clusters():
    assert removal.check_quorum(members('cp1 cp2 cp3'), 'cp3')[0].startswith('etcd will have 2 members (cp1, cp2)')
    assert removal.check_quorum(members('cp1 cp2 cp3 cp4 cp5'), 'cp5') == [
        'etcd will have 4 members: an even number tolerates no more failures than 3 would.'
    ]
    assert removal.check_quorum(members('cp1 cp2 cp3 cp4'), 'cp4') == []


def test_quorum_of_voters():
    assert [removal.quorum(n) for n in range(1, 8)] == [1, 2, 2, 3, 3, 4, 4]


# (reachable, node_state, members, nodes, removed) -> actions
PLANS = [
    (
        'live control plane',
        True,
        'control_plane',
        'cp1 cp2 cp3',
        'cp1 cp2 cp3 w1',
        'cp3',
        ['drain', 'reset', 'remove_etcd_member', 'delete_node'],
    ),
    (
        'dead control plane',
        False,
        None,
        'cp1 cp2 -cp3',
        'cp1 cp2 !cp3 w1',
        'cp3',
        ['remove_etcd_member', 'delete_node'],
    ),
    ('live worker', True, 'worker', 'cp1', 'cp1 w1', 'w1', ['drain', 'reset', 'delete_node']),
    ('dead worker', False, None, 'cp1', 'cp1 !w1', 'w1', ['delete_node']),
    ('worker whose kubelet is down', True, 'worker', 'cp1', 'cp1 !w1', 'w1', ['reset', 'delete_node']),
    ('removed already', True, 'none', 'cp1 cp2', 'cp1 cp2', 'cp3', []),
    ('dead and gone', False, None, 'cp1 cp2', 'cp1 cp2', 'cp3', []),
    ('member left without Node', False, None, 'cp1 cp2 -cp3', 'cp1 cp2', 'cp3', ['remove_etcd_member']),
    ('Node left without member', False, None, 'cp1 cp2', 'cp1 cp2 !cp3', 'cp3', ['delete_node']),
    ('reset, Node left', True, 'none', 'cp1 cp2', 'cp1 cp2 !cp3', 'cp3', ['delete_node']),
    ('half-joined', True, 'partial', 'cp1 cp2', 'cp1 cp2', 'cp3', ['reset']),
]


@pytest.mark.parametrize('case', PLANS, ids=[case[0] for case in PLANS])
def test_plan(case):
    _id, reachable, node_state, member_spec, node_spec, name, actions = case
    outcome = removal.plan(name, name, reachable, node_state, True, members(member_spec), nodes(node_spec), 'cp1')
    assert outcome['actions'] == actions
    assert len(outcome['steps']) >= len(actions)
    if not actions:
        assert outcome['steps'] == [
            '%s is not part of the cluster: no Node %s, no etcd member %s%s. Nothing to do.'
            % (name, name, name, ', no kubeadm files' if reachable else ' (it does not answer)')
        ]


def test_plan_steps_say_where_and_why():
    outcome = removal.plan('cp3', 'cp3', False, None, None, members('cp1 cp2 -cp3'), nodes('cp1 cp2 !cp3'), 'cp1')
    assert outcome['steps'] == [
        'cp3 does not answer: not drained; its pods go with the Node',
        'remove etcd member cp3 (id 1002) through the etcd of cp1 (cp3 does not answer)',
        'delete Node cp3 (kubectl on cp1)',
    ]
    assert outcome['control_plane'] is True
    live = removal.plan('cp3', 'cp3', True, 'control_plane', True, members('cp1 cp2 cp3'), nodes('cp1 cp2 cp3'), 'cp1')
    assert live['steps'][1] == (
        'kubeadm reset on cp3 (kube-vip stopped first, so that it hands the VIP over; kubeadm '
        'reset removes its own etcd member)'
    )
    worker = removal.plan('w1', 'w1', True, 'worker', True, members('cp1'), nodes('cp1 w1'), 'cp1')
    assert worker['steps'][1] == 'kubeadm reset on w1 (the files kubeadm wrote)' and worker['control_plane'] is False


def test_plan_refuses_another_clusters_node():
    with pytest.raises(
        removal.RemovalRefused, match=r'^w1 holds the kubeadm files of another cluster .* --limit w1\.$'
    ):
        removal.plan('w1', 'w1', True, 'worker', False, members('cp1'), nodes('cp1'), 'cp1')


def test_plan_refuses_the_last_control_plane_node():
    # etcd would allow it (a learner elsewhere), but no other control plane Node is left
    with pytest.raises(removal.RemovalRefused, match=r'^cp1 is the last control plane Node of the cluster'):
        removal.plan('cp1', 'cp1', True, 'control_plane', True, members('~cp1 cp2'), nodes('cp1 w1'), 'cp2')


def test_plan_refuses_a_quorum_break_before_anything():
    with pytest.raises(removal.RemovalRefused, match=r"^Removing cp2 would break etcd's quorum"):
        removal.plan('cp2', 'cp2', True, 'control_plane', True, members('cp1 cp2 -cp3'), nodes('cp1 cp2 !cp3'), 'cp1')
