# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The flows of the modules that change the cluster's membership from a control plane: the removal plan,
an etcd member, a Node.

Each flow takes the module parameters, ``root`` (the directory standing for ``/``) and ``run`` (argv ->
(rc, stdout, stderr)), plus an etcd client where it needs one; it returns the result dict or raises a
KubeadmError with a sentence. No Ansible import, so tests call them directly.
"""

from __future__ import annotations

import time

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _etcd as etcd
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm_state as state
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubectl as kubectl
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _removal as removal
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _versions as versions
from ansible_collections.vipadm.kubeadm.plugins.module_utils._kubeadm import KubeadmError

POLL = 2.0  # seconds between two reads of a Node that is not Ready yet


def _kubectl_base(params, root, kubectl_path):
    server = params.get('server') or kubectl.local_server(root)
    return kubectl.base_argv(kubectl_path, params['kubeconfig'], server), server


def _member_summary(member):
    return {key: member[key] for key in ('name', 'id', 'peer_urls', 'learner', 'healthy') if key in member}


def same_cluster(root, node_ca_pem):
    """Whether the CA PEM read on the node to remove is this control plane's CA; None when it cannot be told."""
    if not node_ca_pem:
        return None
    theirs = state.hashes_of(node_ca_pem)
    ours = state.hashes_of(state.read_text(root, state.CA_CERT))
    if not theirs or not ours:
        return None
    return bool(set(theirs) & set(ours))


def removal_plan(params, root, run, kubectl_path, client=None):
    """Read etcd's members (each asked for its health) and the Nodes, then plan (module_utils/_removal)."""
    name = params['node']
    client = client or etcd.Client(root)
    members = client.members_with_health(params['etcd_timeout'])
    facts = {'etcd_members': [_member_summary(member) for member in members]}
    try:
        # etcd first: without its quorum the API server cannot answer kubectl either, and the refusal says why.
        removal.check_quorum(members, name)
        base, facts['api_server'] = _kubectl_base(params, root, kubectl_path)
        listed = kubectl.run_checked(run, kubectl.get_nodes_argv(base), 'kubectl get nodes')
        facts['nodes'] = kubectl.parse_nodes(listed)
        outcome = removal.plan(params.get('host') or name, name, params['reachable'], params.get('node_state'),
                               same_cluster(root, params.get('node_ca_cert')), members, facts['nodes'],
                               params.get('via') or 'this control plane')
    except KubeadmError as exc:  # refused, or kubectl failed: the members found say why
        exc.details.update(facts)
        raise
    result = dict(changed=False, actions=outcome['actions'], steps=outcome['steps'], warnings=outcome['warnings'],
                  control_plane=outcome['control_plane'], **facts)
    result['member'] = _member_summary(outcome['member']) if outcome['member'] else None
    result['node'] = outcome['node']
    return result


def etcd_member_absent(params, root, run, check_mode=False, client=None):
    """Remove the etcd member named ``name`` through this control plane's etcd, unless it is gone already.

    Refuses, before the removal, what module_utils/_removal refuses: the last member, a cluster without quorum,
    or a removal that would leave fewer answering members than the smaller cluster's quorum."""
    client = client or etcd.Client(root)
    members = client.members()
    member = etcd.member_by_name(members, params['name'])
    result = {'changed': bool(member), 'removed': _member_summary(member) if member else None,
              'members': sorted(m['name'] for m in members if not member or m['id'] != member['id'])}
    if not member:
        return result
    for each in members:
        each['healthy'] = client.healthy(each, params['timeout'])
    result['warnings'] = removal.check_quorum(members, params['name'])
    result['removed'] = _member_summary(member)
    if check_mode:
        return result
    left = client.remove(member['id'])
    result['members'] = sorted(m['name'] for m in left)
    return result


def cluster_node(params, root, run, kubectl_path, check_mode=False, clock=None, sleep=None):
    """Drain the Node (``state: drained``), uncordon it (``state: uncordoned``) or delete it (``state: absent``)
    with kubectl, when there is work.

    With ``reason``, a drain first marks the Node with it (``_kubectl.DRAINED_FOR_ANNOTATION``), and an uncordon
    touches only a Node marked with that reason (a Node someone else cordoned stays cordoned); it waits until the
    Node is Ready (on ``kubelet_version`` when given) before it uncordons it and removes the mark."""
    base, server = _kubectl_base(params, root, kubectl_path)
    name = params['name']
    clock, sleep = clock or time.monotonic, sleep or time.sleep

    def read():
        return kubectl.parse_node(kubectl.run_checked(run, kubectl.get_node_argv(base, name),
                                                      'kubectl get node %s' % name))
    uncordon = params['state'] == 'uncordoned'
    # Before an uncordon the kubelet was restarted, and a kubelet of another release restarts the static Pods: this
    # control plane's API server may not answer for a while.
    deadline = clock() + params['timeout']
    node = _answered(read, deadline, clock, sleep) if uncordon else read()
    result = {'changed': False, 'node': node, 'pods': [], 'api_server': server}
    if node is None:
        return result
    reason = params.get('reason')
    if params['state'] == 'absent':
        result['changed'] = True
        if not check_mode:
            result['stdout'] = kubectl.run_checked(run, kubectl.delete_node_argv(base, name),
                                                   'kubectl delete node %s' % name)
        return result
    if uncordon:
        return _uncordon(params, run, base, node, read, result, check_mode, deadline, clock, sleep)
    pods = kubectl.evictable_pods(kubectl.run_checked(run, kubectl.pods_on_node_argv(base, name),
                                                      'kubectl get pods on %s' % name))
    result['pods'] = pods
    if node['unschedulable'] and not pods:
        return result
    result['changed'] = True
    if check_mode:
        return result
    if reason and not node['unschedulable']:  # a Node cordoned before is not vipadm's to uncordon later
        kubectl.run_checked(run, kubectl.mark_drained_argv(base, name, reason), 'kubectl annotate node %s' % name)
    result['stdout'] = kubectl.run_checked(
        run, kubectl.drain_argv(base, name, params['timeout']),
        'kubectl drain %s (PodDisruptionBudgets may keep pods; raise the timeout or fix them)' % name)
    return result


def _answered(read, deadline, clock, sleep):
    """``read()`` once the API server answers it, until ``deadline``; then its error."""
    while True:
        try:
            return read()
        except KubeadmError:
            if clock() >= deadline:
                raise
        sleep(POLL)


def _uncordon(params, run, base, node, read, result, check_mode, deadline, clock, sleep):
    name, reason, wanted = params['name'], params.get('reason'), params.get('kubelet_version')
    if reason and node['drained_for'] != reason:
        return result  # not drained by vipadm for this reason: whoever cordoned it uncordons it
    if not node['unschedulable'] and not node['drained_for']:
        return result
    result['changed'] = True
    if check_mode:
        return result

    def ready(item):
        return item is not None and item['ready'] and (
            not wanted or versions.parse_release(item['kubelet_version']) == versions.parse_release(wanted))
    while not ready(node):
        if clock() >= deadline:
            raise KubeadmError(
                'Node %s is not Ready%s after %d s (it reports kubelet %s, Ready: %s), so it stays cordoned: check '
                'the kubelet on it (systemctl status kubelet, journalctl -u kubelet), then run again.'
                % (name, ' on kubelet %s' % wanted if wanted else '', params['timeout'],
                   (node or {}).get('kubelet_version'), (node or {}).get('ready')), node=node)
        sleep(POLL)
        node = _answered(read, deadline, clock, sleep) or node
    result['node'] = node
    if node['unschedulable']:
        result['stdout'] = _answered(
            lambda: kubectl.run_checked(run, kubectl.uncordon_argv(base, name), 'kubectl uncordon %s' % name),
            deadline, clock, sleep)
    if node['drained_for']:
        _answered(lambda: kubectl.run_checked(run, kubectl.mark_drained_argv(base, name, None),
                                              'kubectl annotate node %s' % name), deadline, clock, sleep)
    return result
