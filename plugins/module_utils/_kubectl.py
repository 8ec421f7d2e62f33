# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kubectl on a control plane: argv and the parsing of its JSON, pure functions.

Every call goes to the control plane's own API server (the address and port of its kube-apiserver.yaml),
not to the VIP: while a node leaves, the VIP may be moving (its holder reset), and the API server's
certificate names the node's address. The credential is the node's admin.conf.
"""

from __future__ import annotations

import json

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _half_init as half_init
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm_state as state
from ansible_collections.vipadm.kubeadm.plugins.module_utils._kubeadm import KubeadmError

CONTROL_PLANE_LABEL = 'node-role.kubernetes.io/control-plane'
MIRROR_ANNOTATION = 'kubernetes.io/config.mirror'
# vipadm's mark on a Node it drained itself, with the reason as its value: only such a Node is uncordoned by vipadm.
DRAINED_FOR_ANNOTATION = 'vipadm.kubeadm/drained-for'
FINISHED_PHASES = ('Succeeded', 'Failed')


class KubectlError(KubeadmError):
    """kubectl failed or printed what cannot be read; a sentence for the user."""


def local_server(root):
    """``https://<advertise address>:<port>`` of this control plane's kube-apiserver.yaml."""
    address, port = half_init.local_api_endpoint(state.read_text(root, state.APISERVER_MANIFEST))
    if not address or not port:
        raise KubectlError('%s names no --advertise-address: this node is not a kubeadm control plane, so it cannot '
                           'run the cluster-side steps' % state.APISERVER_MANIFEST)
    return 'https://%s:%d' % ('[%s]' % address if ':' in address else address, port)


def base_argv(kubectl, kubeconfig, server=None):
    return [kubectl, '--kubeconfig', kubeconfig] + (['--server', server] if server else [])


def get_nodes_argv(base):
    return base + ['get', 'nodes', '-o', 'json']


def get_node_argv(base, name):
    return base + ['get', 'node', name, '--ignore-not-found', '-o', 'json']


def pods_on_node_argv(base, name):
    return base + ['get', 'pods', '--all-namespaces', '--field-selector', 'spec.nodeName=%s' % name, '-o', 'json']


def drain_argv(base, name, timeout):
    """kubeadm's documented drain before a node leaves: DaemonSet pods stay, emptyDir data and pods that no
    controller manages go."""
    return base + ['drain', name, '--ignore-daemonsets', '--delete-emptydir-data', '--force',
                   '--timeout=%ds' % timeout]


def delete_node_argv(base, name):
    return base + ['delete', 'node', name, '--ignore-not-found']


def mark_drained_argv(base, name, reason):
    """Set (``reason``) or remove (None) the annotation that says vipadm drained the Node."""
    value = '%s=%s' % (DRAINED_FOR_ANNOTATION, reason) if reason else DRAINED_FOR_ANNOTATION + '-'
    return base + ['annotate', 'node', name, '--overwrite', value]


def uncordon_argv(base, name):
    return base + ['uncordon', name]


def cluster_configuration_argv(base):
    """kubeadm's ClusterConfiguration, as ``kubeadm init`` and ``kubeadm upgrade apply`` upload it."""
    return base + ['get', 'configmap', 'kubeadm-config', '--namespace', 'kube-system',
                   '-o', 'jsonpath={.data.ClusterConfiguration}']


def kubernetes_version_of(cluster_configuration):
    """The ``kubernetesVersion`` of a ClusterConfiguration's YAML text; None when it names none."""
    for line in (cluster_configuration or '').splitlines():
        if line.startswith('kubernetesVersion:'):
            return line.split(':', 1)[1].strip().strip('"\'') or None
    return None


def _json(text, what):
    try:
        return json.loads(text) if (text or '').strip() else {}
    except ValueError:
        raise KubectlError('kubectl printed no JSON for %s: %r' % (what, (text or '').strip()[:200]))


def node_summary(item):
    """``{name, ready, control_plane, unschedulable, kubelet_version, drained_for}`` of a Node object
    (``drained_for``: the reason vipadm drained it, None when vipadm did not)."""
    status = item.get('status') or {}
    conditions = status.get('conditions') or []
    metadata = item.get('metadata') or {}
    return {
        'name': metadata['name'],
        'ready': any(c.get('type') == 'Ready' and c.get('status') == 'True' for c in conditions),
        'control_plane': CONTROL_PLANE_LABEL in (metadata.get('labels') or {}),
        'unschedulable': bool((item.get('spec') or {}).get('unschedulable')),
        'kubelet_version': (status.get('nodeInfo') or {}).get('kubeletVersion'),
        'drained_for': (metadata.get('annotations') or {}).get(DRAINED_FOR_ANNOTATION),
    }


def parse_nodes(text):
    return [node_summary(item) for item in _json(text, 'the Nodes').get('items') or []]


def parse_node(text):
    """The summary of ``kubectl get node --ignore-not-found -o json``; None when there is no such Node."""
    item = _json(text, 'the Node')
    return node_summary(item) if item.get('metadata') else None


def evictable_pods(text):
    """``namespace/name`` of the pods ``kubectl drain --ignore-daemonsets`` would evict or delete: not mirror
    Pods (static Pods: the kubelet owns them), not DaemonSet Pods, not finished Pods."""
    found = []
    for item in _json(text, 'the pods').get('items') or []:
        metadata = item.get('metadata') or {}
        if MIRROR_ANNOTATION in (metadata.get('annotations') or {}):
            continue
        if any(owner.get('kind') == 'DaemonSet' for owner in metadata.get('ownerReferences') or []):
            continue
        if (item.get('status') or {}).get('phase') in FINISHED_PHASES:
            continue
        found.append('%s/%s' % (metadata.get('namespace', ''), metadata.get('name', '')))
    return sorted(found)


def run_checked(run, argv, what):
    rc, stdout, stderr = run(argv)
    if rc != 0:
        raise KubectlError('%s failed (kubectl exit %d): %s' % (what, rc, (stderr or stdout).strip()[-400:]))
    return stdout
