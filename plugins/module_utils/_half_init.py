# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Did the kubeadm init on this node finish, or did it stop half-way (reference kubeadm.md 7.2)?

A failed ``kubeadm init`` leaves the files of a control plane (certificates, kubeconfigs, manifests),
so the files alone cannot tell. The stronger signal is the ``kubeadm-config`` ConfigMap, which init
uploads only after the control plane came up: ``probe_kubeadm_config`` asks the local API server for it
with the node's own credentials, and ``decide`` says whether the node may be reset. Only ``probe`` and
``read_local_api`` touch the node; everything else is pure.
"""

from __future__ import annotations

import http.client
import re
import socket
import ssl

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm_state as state
from ansible_collections.vipadm.kubeadm.plugins.module_utils._vip_probe import client_tls_context

SUPER_ADMIN_CONF = '/etc/kubernetes/super-admin.conf'
KUBELET_CLIENT_CURRENT = '/var/lib/kubelet/pki/kubelet-client-current.pem'
CONFIGMAP_PATH = '/api/v1/namespaces/kube-system/configmaps/kubeadm-config'

# What the probe of the kubeadm-config ConfigMap found.
PRESENT = 'present'      # 200: init finished, a real cluster
ABSENT = 'absent'        # 404: the API server runs, init never uploaded its configuration
NO_ANSWER = 'no_answer'  # connection refused or timed out: no API server on this node
UNKNOWN = 'unknown'      # anything else (401/403, TLS error, no credentials): cannot tell

# States (preflight_facts' cluster_state) of nodes that completed a join.
JOINED_STATES = ('control_plane', 'worker')

# Outcomes of decide().
FINISHED = 'finished'
HALF_INIT = 'half_init'
REFUSE = 'refuse'

_FLAG = re.compile(r'--(advertise-address|secure-port)=(\S+)')


def local_api_endpoint(manifest_text):
    """(address, port) of the kube-apiserver static Pod manifest; (None, None) without an address."""
    flags = dict(_FLAG.findall(manifest_text or ''))
    address = flags.get('advertise-address', '').strip('"\'') or None
    try:
        port = int(flags.get('secure-port', '6443').strip('"\''))
    except ValueError:
        port = None
    return address, port


_IMAGE_TAG = re.compile(r'image:\s*["\']?\S*/kube-apiserver:(v\d+\.\d+\.\d+[^"\'\s]*)')


def api_server_version(manifest_text):
    """The Kubernetes version of the kube-apiserver static Pod manifest (its image tag); None without one."""
    match = _IMAGE_TAG.search(manifest_text or '')
    return match.group(1) if match else None


def classify_status(status):
    """The probe outcome of an HTTP status of the GET of the ConfigMap."""
    if status == 200:
        return PRESENT
    if status == 404:
        return ABSENT
    return UNKNOWN


def read_local_api(address, port, ca_pem, cert_pem, key_pem, timeout):
    """HTTP status of the GET of the ConfigMap, or None when nothing answers. Raises ssl/OSError otherwise."""
    context = client_tls_context(ca_pem, cert_pem, key_pem)
    context.check_hostname = False  # the serving certificate names the node; the cluster CA is what counts
    connection = http.client.HTTPSConnection(address, port, timeout=timeout, context=context)
    try:
        connection.request('GET', CONFIGMAP_PATH)
        return connection.getresponse().status
    except (ConnectionRefusedError, socket.timeout, TimeoutError):
        return None
    except OSError as exc:
        if isinstance(exc, ssl.SSLError):
            raise
        return None  # no route, unreachable: nothing answers
    finally:
        connection.close()


def probe(root, timeout=3.0, reader=read_local_api):
    """(outcome, detail): the kubeadm-config ConfigMap through this node's own API server."""
    address, port = local_api_endpoint(state.read_text(root, state.APISERVER_MANIFEST))
    if not address or not port:
        return UNKNOWN, 'kube-apiserver.yaml names no --advertise-address'
    # 1.29+: admin.conf has no rights until init created the kubeadm:cluster-admins binding.
    kubeconfig = SUPER_ADMIN_CONF if state.exists(root, SUPER_ADMIN_CONF) else state.ADMIN_CONF
    credentials = state.kubeconfig_client(state.read_text(root, kubeconfig))
    ca_pem = state.read_text(root, state.CA_CERT)
    if not credentials or not ca_pem:
        return UNKNOWN, 'no client credentials in %s or no %s' % (kubeconfig, state.CA_CERT)
    where = 'https://%s:%d with %s' % (address, port, kubeconfig)
    try:
        status = reader(address, port, ca_pem, credentials[0], credentials[1], timeout)
    except (ssl.SSLError, OSError, ValueError, http.client.HTTPException) as exc:
        return UNKNOWN, '%s: %s' % (where, exc)
    if status is None:
        return NO_ANSWER, 'no API server answers at %s' % where
    return classify_status(status), 'the API server at %s answered %d' % (where, status)


def decide(outcome, detail, others_with_files, kubelet_client_current):
    """(decision, sentence) for an init host holding the files of a control plane.

    outcome/detail: what ``probe`` found. others_with_files: the other nodes of the inventory that hold
    kubeadm files ({name: state}). kubelet_client_current: whether the kubelet-finalize phase of init
    left /var/lib/kubelet/pki/kubelet-client-current.pem (it runs after the control plane came up).
    """
    found = 'kube-apiserver.yaml is here and %s' % detail
    if outcome == PRESENT:
        return FINISHED, 'The init finished: %s (kubeadm-config exists).' % found
    # A node that completed a join (its kubelet.conf came from the TLS bootstrap) proves that init
    # finished: joins need the tokens and cluster-info of its last phases. A node just powered on may
    # not serve its API yet, which must not stop the run.
    joined = sorted(name for name, node_state in others_with_files.items() if node_state in JOINED_STATES)
    if joined and outcome in (NO_ANSWER, UNKNOWN):
        return FINISHED, ('The init finished: %s, and %s joined this cluster, which only a finished init allows.'
                          % (found, ', '.join(joined)))
    if others_with_files:
        return REFUSE, (
            'This node holds the files of a control plane (%s), and %s hold kubeadm files too, so a cluster may '
            'exist: nothing was reset. If it is a real cluster, make its API server answer and run again; if not, '
            'run the reset playbook on every node, then run again.'
            % (found, ', '.join('%s (%s)' % item for item in sorted(others_with_files.items()))))
    if outcome == ABSENT:
        return HALF_INIT, ('An earlier kubeadm init stopped half-way: %s (no kubeadm-config in kube-system) and no '
                           'other node holds kubeadm files: this node is reset and initialized again.' % found)
    if outcome == NO_ANSWER and not kubelet_client_current:
        return HALF_INIT, ('An earlier kubeadm init stopped half-way: %s, init never reached kubelet-finalize (no '
                           '%s) and no other node holds kubeadm files: this node is reset and initialized again.'
                           % (found, KUBELET_CLIENT_CURRENT))
    if outcome == NO_ANSWER:
        why = 'but init had reached kubelet-finalize (%s exists), so the cluster may be real' % KUBELET_CLIENT_CURRENT
    else:
        why = 'so whether init finished cannot be told'
    return REFUSE, ('This node holds the files of a control plane (%s), %s: nothing was reset. Start its kubelet '
                    'and API server and run again, or, if the cluster is not needed, run the reset playbook on it '
                    'first.' % (found, why))
