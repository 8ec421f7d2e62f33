# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Removing a node from a kubeadm cluster: what to do, and what to refuse before anything changes.

Pure functions: the caller reads etcd's members (with their health), the Nodes, and what the node to
remove holds, and gets an ordered list of actions or a ``RemovalRefused`` with a sentence that says what
was found and what to do.

etcd counts only voting members (not learners): a cluster of ``n`` voters needs ``n // 2 + 1`` of them to
agree on anything, a membership change included. Removing a member needs that quorum now, and the members
that answer afterwards must still be a quorum of the smaller cluster, or the cluster stops.
"""

from __future__ import annotations

from ansible_collections.vipadm.kubeadm.plugins.module_utils._kubeadm import KubeadmError

# The actions, in the order they run.
DRAIN = 'drain'
RESET = 'reset'
REMOVE_ETCD_MEMBER = 'remove_etcd_member'
DELETE_NODE = 'delete_node'
ACTIONS = (DRAIN, RESET, REMOVE_ETCD_MEMBER, DELETE_NODE)


class RemovalRefused(KubeadmError):
    """The removal would break the cluster or names no node of it; nothing was changed."""


def quorum(voters):
    """How many of ``voters`` voting members must agree: a majority."""
    return voters // 2 + 1


def _names(members):
    return ', '.join(sorted(member['name'] or '(not started, id %s)' % member['id'] for member in members))


def check_quorum(members, name):
    """Refuse when removing the member ``name`` (a dict of ``members``) cannot be done or would stop etcd.

    Returns the warnings (an etcd of two members tolerates no failure); raises RemovalRefused."""
    target = [member for member in members if member['name'] == name]
    if not target:
        return []
    target = target[0]
    voters = [member for member in members if not member['learner']]
    if target['learner']:
        return []  # a learner does not vote: removing it changes no quorum
    healthy = [member for member in voters if member['healthy']]
    down = [member for member in voters if not member['healthy']]
    if len(voters) == 1:
        raise RemovalRefused(
            '%s is the last control plane: its etcd is the only member, so removing it would end the cluster. '
            'Nothing was changed. To take the whole cluster down, run reset.yml -e reset_confirm=true; to replace '
            'this control plane, add the new one with site.yml first, then remove this one.' % name)
    needed = quorum(len(voters))
    if len(healthy) < needed:
        raise RemovalRefused(
            'etcd has no quorum: %d of its %d members answer (%s; not answering: %s), and %d must answer for any '
            'change, a member removal included. Nothing was changed. Bring back %s (power on, network, kubelet), '
            'then run again; if they are gone for good, restore etcd from a snapshot (etcdutl snapshot restore) '
            'first.' % (len(healthy), len(voters), _names(healthy) or 'none', _names(down), needed,
                        'the members that do not answer' if len(down) > 1 else _names(down)))
    left = len(voters) - 1
    healthy_left = len(healthy) - (1 if target['healthy'] else 0)
    needed_left = quorum(left)
    if healthy_left < needed_left:
        others_down = [member for member in down if member['name'] != name]
        raise RemovalRefused(
            'Removing %s would break etcd\'s quorum: etcd has %d members (%s) and %s %s; without %s it would '
            'have %d members of which %d answer, fewer than the %d it needs. Nothing was changed. First bring back '
            '%s, or remove %s with the remove_node playbook (%s), then remove %s.'
            % (name, len(voters), _names(voters), _names(others_down),
               'does not answer' if len(others_down) == 1 else 'do not answer', name, left, healthy_left, needed_left,
               _names(others_down), 'it' if len(others_down) == 1 else 'them one at a time',
               'it does not answer' if len(others_down) == 1 else 'they do not answer', name))
    if left == 2:
        return ['etcd will have 2 members (%s): 2 members tolerate no failure, fewer than 3 would. Add a control '
                'plane with site.yml, or remove one more for a single control plane.'
                % _names([member for member in voters if member['name'] != name])]
    if left % 2 == 0:
        return ['etcd will have %d members: an even number tolerates no more failures than %d would.'
                % (left, left - 1)]
    return []


def plan(host, name, reachable, node_state, same_cluster, members, nodes, via):
    """The actions that remove ``name`` (the Node and etcd member name of inventory host ``host``).

    reachable: whether ``host`` answered; node_state: what its kubeadm files say (``none``, ``control_plane``,
    ``worker``, ``partial``; None when it did not answer); same_cluster: False when its files belong to another
    cluster (another CA), None when that cannot be told; members: etcd's members, each with ``healthy``;
    nodes: ``[{name, ready, control_plane}]``; via: the control plane that runs the cluster-side actions.

    Returns ``{actions, steps, warnings, control_plane, member, node}``; raises RemovalRefused."""
    if same_cluster is False:
        raise RemovalRefused(
            '%s holds the kubeadm files of another cluster (its CA is not the CA of the cluster %s runs): it is not '
            'part of this cluster, so nothing was changed. If it should be bare, reset it with reset.yml -e '
            'reset_confirm=true --limit %s.' % (host, via, host))
    member = ([m for m in members if m['name'] == name] or [None])[0]
    node = ([n for n in nodes if n['name'] == name] or [None])[0]
    warnings = check_quorum(members, name)
    has_files = bool(reachable and node_state and node_state != 'none')
    control_plane = bool(member or (node and node.get('control_plane')) or node_state in ('control_plane',))
    if control_plane and node and node.get('control_plane'):
        others = [n for n in nodes if n.get('control_plane') and n['name'] != name]
        if not others:
            raise RemovalRefused(
                '%s is the last control plane Node of the cluster: removing it would end the cluster. Nothing was '
                'changed. To take the whole cluster down, run reset.yml -e reset_confirm=true.' % name)

    actions, steps = [], []
    if node and reachable and node.get('ready'):
        actions.append(DRAIN)
        steps.append('drain Node %s (kubectl drain on %s: cordon, evict its pods)' % (name, via))
    elif node and reachable:
        steps.append('Node %s is not Ready: not drained; its pods go with the Node' % name)
    elif node:
        steps.append('%s does not answer: not drained; its pods go with the Node' % host)
    if has_files:
        actions.append(RESET)
        why = ('kube-vip stopped first, so that it hands the VIP over; kubeadm reset removes its own etcd member'
               if control_plane else 'the files kubeadm wrote')
        steps.append('kubeadm reset on %s (%s)' % (host, why))
    if member:
        actions.append(REMOVE_ETCD_MEMBER)
        if has_files:
            steps.append('etcd member %s removed by kubeadm reset, or from %s when reset could not' % (name, via))
        else:
            steps.append('remove etcd member %s (id %s) through the etcd of %s%s'
                         % (name, member['id'], via, '' if reachable else ' (%s does not answer)' % host))
    if node:
        actions.append(DELETE_NODE)
        steps.append('delete Node %s (kubectl on %s)' % (name, via))
    if not actions:
        steps.append('%s is not part of the cluster: no Node %s, no etcd member %s%s. Nothing to do.'
                     % (host, name, name, ', no kubeadm files' if reachable else ' (it does not answer)'))
    return {'actions': actions, 'steps': steps, 'warnings': warnings, 'control_plane': control_plane,
            'member': member, 'node': node}
