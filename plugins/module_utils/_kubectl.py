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


def _json(text, what):
    try:
        return json.loads(text) if (text or '').strip() else {}
    except ValueError:
        raise KubectlError('kubectl printed no JSON for %s: %r' % (what, (text or '').strip()[:200]))


def node_summary(item):
    """``{name, ready, control_plane, unschedulable}`` of a Node object."""
    conditions = (item.get('status') or {}).get('conditions') or []
    labels = (item.get('metadata') or {}).get('labels') or {}
    return {
        'name': item['metadata']['name'],
        'ready': any(c.get('type') == 'Ready' and c.get('status') == 'True' for c in conditions),
        'control_plane': CONTROL_PLANE_LABEL in labels,
        'unschedulable': bool((item.get('spec') or {}).get('unschedulable')),
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
