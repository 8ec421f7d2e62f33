# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The upgrade of a kubeadm cluster to another Kubernetes release, decided before anything changes.

kubeadm's documented order: kubeadm of the new release on the first control plane, ``kubeadm upgrade apply``
there, ``kubeadm upgrade node`` on every other control plane one at a time, then on the workers; each node is
drained before its kubelet and kubectl are replaced and the kubelet restarted, and uncordoned once it is Ready
on the new kubelet. :func:`plan` reads what every node runs and says, per inventory host, which of those steps
are left, so that a run that stopped half-way resumes where it stopped and a finished upgrade changes nothing.
It refuses with a sentence what kubeadm would refuse half-way (a downgrade, a skipped minor, kubelets too old)
and what vipadm cannot tell (a control plane whose API server version cannot be read).
"""

from __future__ import annotations

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _half_init as half_init
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm_state as state
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubectl as kubectl
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _versions as versions
from ansible_collections.vipadm.kubeadm.plugins.module_utils._kubeadm import KubeadmError, parse_kubernetes_version

# kubeadm upgrades the control plane one minor at a time (cmd/kubeadm/app/phases/upgrade/policy.go,
# MaximumAllowedMinorVersionUpgradeSkew), and a kubelet may be at most 3 minors older than its control plane.
UPGRADE_MINOR_STEP = 1
KUBELET_MINOR_SKEW = versions.KUBEADM_OLDEST_KUBELET_SKEW

# The value of _kubectl.DRAINED_FOR_ANNOTATION on a Node drained for the upgrade: only a Node drained by vipadm is
# uncordoned by vipadm, so a Node the administrator cordoned stays cordoned.
UPGRADE_REASON = 'upgrade'

APPLY = 'apply'
NODE = 'node'


class UpgradeError(KubeadmError):
    """The upgrade is refused before anything changed; one sentence per problem."""


def _text(version):
    return '%d.%d.%d' % version


def check_target(target_text, cluster_text):
    """Refuse a target kubeadm cannot upgrade this cluster to; returns (target, cluster) as tuples."""
    try:
        parse_kubernetes_version(target_text)
        target = versions.parse_release(target_text)
    except KubeadmError:
        target = None
    if target is None:
        raise UpgradeError('vipadm_kubernetes_version %r is not a Kubernetes release (such as 1.37.2): set the release '
                           'to upgrade to. Nothing was changed.' % (target_text,))
    low, high = versions.SUPPORTED_KUBERNETES_MINORS
    if not low <= target[1] <= high or target[0] != 1:
        raise UpgradeError('vipadm supports Kubernetes %s, not %s. Nothing was changed.'
                           % (versions.SUPPORTED_KUBERNETES_TEXT, _text(target)))
    cluster = versions.parse_release(cluster_text)
    if cluster is None:
        raise UpgradeError('The cluster\'s Kubernetes version cannot be read (kubeadm-config ConfigMap: kubernetesVersion '
                           '%r): is this a kubeadm cluster? Nothing was changed.' % (cluster_text,))
    if target < cluster:
        raise UpgradeError(
            'The cluster runs Kubernetes %s and vipadm_kubernetes_version is %s: that is a downgrade, which vipadm does '
            'not do (kubeadm documents no downgrade; restore from a backup of etcd instead). Set '
            'vipadm_kubernetes_version to %s or newer. Nothing was changed.' % (_text(cluster), _text(target), _text(cluster)))
    if target[1] > cluster[1] + UPGRADE_MINOR_STEP:
        raise UpgradeError(
            'The cluster runs Kubernetes %s and vipadm_kubernetes_version is %s: kubeadm upgrades one minor release at '
            'a time, so upgrade to a 1.%d release first (vipadm_kubernetes_version: 1.%d.x, and its bundle or '
            'packages), then to %s. Nothing was changed.'
            % (_text(cluster), _text(target), cluster[1] + 1, cluster[1] + 1, _text(target)))
    return target, cluster


def _step(node, target, role, apply_host):
    """The steps left on one node (see :func:`plan`)."""
    host = node['host']
    kubeadm = versions.parse_release(node.get('kubeadm_version'))
    kubelet = versions.parse_release(node.get('kubelet_version'))
    listed = node.get('node') or {}
    running_kubelet = versions.parse_release(listed.get('kubelet_version'))
    kubelet_left = kubelet != target or running_kubelet != target
    steps = {'install_kubeadm': kubeadm != target, 'kubeadm_upgrade': None, 'kubelet': kubelet_left,
             'uncordon': kubelet_left or listed.get('drained_for') == UPGRADE_REASON}
    if role == 'control_plane':
        if host == apply_host:
            steps['kubeadm_upgrade'] = APPLY
        elif versions.parse_release(node.get('api_server_version')) != target:
            steps['kubeadm_upgrade'] = NODE
    elif kubelet_left:
        # kubeadm upgrade node on a worker writes the kubelet's configuration of the new release: before the kubelet.
        steps['kubeadm_upgrade'] = NODE
    return steps


def plan(target_text, cluster_text, nodes, listed_nodes):
    """Per inventory host, the upgrade steps left; raises UpgradeError before anything changes.

    ``nodes``: the inventory's nodes in inventory order, control planes first: ``{host, name, role
    ('control_plane' or 'worker'), kubeadm_version, kubelet_version (the binaries), api_server_version (control
    planes: the image tag of kube-apiserver.yaml)}``. ``listed_nodes``: every Node of the cluster as
    ``_kubectl.node_summary`` gives it (with ``kubelet_version`` and ``drained_for``).

    Returns ``{target, cluster, apply_host, nodes: {host: steps}, left: [hosts with a step left], outside: [Node
    names not in the inventory], warnings: [...]}``; the steps of a host: ``install_kubeadm`` (bool),
    ``kubeadm_upgrade`` (``apply``, ``node`` or None), ``kubelet`` (drain, new kubelet and kubectl, restart),
    ``uncordon``.
    """
    target, cluster = check_target(target_text, cluster_text)
    by_name = dict((item['name'], item) for item in listed_nodes)
    control_planes = [node for node in nodes if node['role'] == 'control_plane']
    if not control_planes:
        raise UpgradeError('The inventory lists no control plane: the upgrade starts on one. Nothing was changed.')
    problems = []
    for node in nodes:
        if node['name'] not in by_name:
            problems.append('%s (Node %s) is not a Node of this cluster: run site.yml to join it first, or take it '
                            'out of the inventory' % (node['host'], node['name']))
        api_server = versions.parse_release(node.get('api_server_version'))
        if node['role'] == 'control_plane' and api_server is None:
            problems.append('%s holds no kube-apiserver manifest with a version (/etc/kubernetes/manifests/'
                            'kube-apiserver.yaml): it is not a working control plane; run site.yml first'
                            % node['host'])
        if api_server is not None and api_server > target:
            problems.append('%s runs kube-apiserver %s, newer than %s: the cluster is half-way through another '
                            'upgrade; finish it with vipadm_kubernetes_version %s' % (node['host'], _text(api_server),
                                                                                      _text(target), _text(api_server)))
    host_of = dict((node['name'], node['host']) for node in nodes)
    outside = sorted(name for name in by_name if name not in host_of)
    for name, listed in sorted(by_name.items()):
        kubelet = versions.parse_release(listed.get('kubelet_version'))
        if kubelet is None or kubelet[1] + KUBELET_MINOR_SKEW >= target[1]:
            continue
        if name in host_of:
            problems.append('%s runs kubelet %s, more than %d minors older than %s: kubeadm refuses that skew; upgrade '
                            'it one release at a time'
                            % (host_of[name], _text(kubelet), KUBELET_MINOR_SKEW, _text(target)))
        else:
            problems.append('Node %s is not in the inventory and runs kubelet %s, more than %d minors older than %s: '
                            'kubeadm refuses that skew; add it to the inventory so that it is upgraded too, or '
                            'remove it (remove_node.yml)' % (name, _text(kubelet), KUBELET_MINOR_SKEW, _text(target)))
    if problems:
        raise UpgradeError('The upgrade to %s is refused, nothing was changed: %s.' % (_text(target), '; '.join(problems)))

    # The cluster's version moves only with kubeadm upgrade apply: it runs on the first control plane (again, when
    # an earlier run stopped after the manifests and before the configuration was uploaded).
    apply_host = None if cluster == target else control_planes[0]['host']
    steps = {}
    for node in nodes:
        steps[node['host']] = _step(dict(node, node=by_name.get(node['name'])), target, node['role'], apply_host)
    warnings = []
    if outside:
        warnings.append('Nodes %s are not in the inventory: their kubelets stay at the version they run (%s may be '
                        'up to %d minors older than the control plane); add them to the inventory to upgrade them.'
                        % (', '.join(outside), ', '.join('%s %s' % (name, by_name[name].get('kubelet_version'))
                                                         for name in outside), KUBELET_MINOR_SKEW))
    return {'target': _text(target), 'cluster': _text(cluster), 'apply_host': apply_host, 'nodes': steps,
            'left': [host for host, todo in steps.items() if any(todo.values())], 'outside': outside,
            'warnings': warnings}


def describe(outcome):
    """One line per host: what the upgrade does there."""
    lines = []
    for host, steps in outcome['nodes'].items():
        todo = []
        if steps['install_kubeadm']:
            todo.append('install kubeadm %s' % outcome['target'])
        if steps['kubeadm_upgrade']:
            todo.append('kubeadm upgrade %s' % (
                'apply v%s' % outcome['target'] if steps['kubeadm_upgrade'] == APPLY else 'node'))
        if steps['kubelet']:
            todo.append('drain, kubelet and kubectl %s, restart the kubelet' % outcome['target'])
        if steps['uncordon']:
            todo.append('uncordon')
        lines.append('%s: %s' % (host, ', '.join(todo) if todo else 'at %s already' % outcome['target']))
    return lines


# ---- kubeadm upgrade apply / node ------------------------------------------------------------------------

def upgrade_argv(kubeadm, action, target, ignore_preflight_errors=()):
    argv = [kubeadm, 'upgrade', action]
    if action == APPLY:
        argv += ['v%s' % target.lstrip('v'), '--yes']
    if ignore_preflight_errors:
        argv.append('--ignore-preflight-errors=%s' % ','.join(ignore_preflight_errors))
    return argv


def plan_argv(kubeadm, target, ignore_preflight_errors=()):
    argv = [kubeadm, 'upgrade', 'plan', 'v%s' % target.lstrip('v')]
    if ignore_preflight_errors:
        argv.append('--ignore-preflight-errors=%s' % ','.join(ignore_preflight_errors))
    return argv


def kubeadm_refusal(output):
    """The line of kubeadm's output that says why it stopped (its last 'error'/'[ERROR' line), or its last line."""
    lines = [line.strip() for line in (output or '').splitlines() if line.strip()]
    for line in reversed(lines):
        lowered = line.lower()
        if lowered.startswith('error') or line.startswith('[ERROR') or 'fatal' in lowered:
            return line
    return lines[-1] if lines else 'no output'


# ---- the flows of the modules (``run``: argv -> (rc, stdout, stderr)) ----------------------------------------

def upgrade_plan(params, root, run, kubectl_path):
    """Read the cluster's version and Nodes through this control plane's API server, then :func:`plan`."""
    server = params.get('server') or kubectl.local_server(root)
    base = kubectl.base_argv(kubectl_path, params['kubeconfig'], server)
    configuration = kubectl.run_checked(run, kubectl.cluster_configuration_argv(base),
                                        'kubectl get configmap kubeadm-config (the cluster\'s version)')
    cluster_version = kubectl.kubernetes_version_of(configuration)
    listed = kubectl.parse_nodes(kubectl.run_checked(run, kubectl.get_nodes_argv(base), 'kubectl get nodes'))
    try:
        outcome = plan(params['version'], cluster_version, params['nodes'], listed)
    except UpgradeError as exc:
        exc.details.update(cluster_version=cluster_version, listed_nodes=listed)
        raise
    warnings = outcome.pop('warnings')
    return dict(changed=False, api_server=server, listed_nodes=listed, steps=describe(outcome), warnings=warnings,
                **outcome)


def kubeadm_upgrade(params, root, run, kubeadm_path, check_mode=False):
    """``kubeadm upgrade apply vX.Y.Z`` or ``kubeadm upgrade node``; in check mode ``kubeadm upgrade plan`` (read-only)
    when this node's kubeadm is of the target release already."""
    target = versions.parse_release(params['version'])
    if target is None:
        raise UpgradeError('version %r is not a Kubernetes release (such as 1.37.2).' % (params['version'],))
    action, ignored = params['action'], params.get('ignore_preflight_errors') or []
    result = {'changed': True, 'action': action, 'version': _text(target), 'skipped_because': None}
    if action == NODE:  # a worker has no kube-apiserver.yaml: read_text gives None, and no version
        running = versions.parse_release(half_init.api_server_version(state.read_text(root, state.APISERVER_MANIFEST)))
        if running == target:
            result.update(changed=False, skipped_because='kube-apiserver.yaml runs %s already' % _text(target))
            return result
    if check_mode:
        if action == APPLY:
            rc, stdout, stderr = run([kubeadm_path, 'version', '-o', 'short'])
            installed = versions.parse_release(stdout) if rc == 0 else None
            if installed is not None and installed[:2] == target[:2]:
                result['plan'] = _run_kubeadm(run, plan_argv(kubeadm_path, _text(target), ignored),
                                              'kubeadm upgrade plan')
        return result
    result['stdout'] = _run_kubeadm(run, upgrade_argv(kubeadm_path, action, _text(target), ignored),
                                    'kubeadm upgrade %s' % action)
    return result


def _run_kubeadm(run, argv, what):
    rc, stdout, stderr = run(argv)
    if rc != 0:
        output = (stdout or '') + '\n' + (stderr or '')
        raise UpgradeError('%s failed (exit %d): %s' % (what, rc, kubeadm_refusal(output)),
                           stdout_tail=(stdout or '').splitlines()[-40:], stderr_tail=(stderr or '').splitlines()[-40:])
    return stdout
