# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The etcd of a kubeadm control plane, through etcd's v3 JSON gateway, with the standard library only.

kubeadm's stacked etcd serves clients on https://localhost:2379 (127.0.0.1, or ::1 on an IPv6 control plane, and
the node's address) and accepts any client certificate of its CA; kubeadm itself uses ``apiserver-etcd-client`` for
its member changes, and so does vipadm. The gateway takes ``POST /v3/<service>/<method>`` with a JSON body; 64-bit
member IDs travel as decimal strings (proto3's JSON mapping). Parsing is pure; only ``Client`` opens connections.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm_state as state
from ansible_collections.vipadm.kubeadm.plugins.module_utils._kubeadm import KubeadmError
from ansible_collections.vipadm.kubeadm.plugins.module_utils._vip_probe import client_tls_context

# localhost, not 127.0.0.1: on a control plane that advertises an IPv6 address kubeadm has etcd listen on [::1]:2379
# instead of 127.0.0.1:2379; the connection tries every address of the name, and etcd's certificate names localhost.
LOCAL_ENDPOINT = 'https://localhost:2379'
ETCD_CA = '/etc/kubernetes/pki/etcd/ca.crt'
CLIENT_CERT = '/etc/kubernetes/pki/apiserver-etcd-client.crt'
CLIENT_KEY = '/etc/kubernetes/pki/apiserver-etcd-client.key'


class EtcdError(KubeadmError):
    """etcd did not answer, or refused, with a sentence for the user."""


def parse_members(body):
    """The members of a ``/v3/cluster/member/list`` answer: ``[{id, name, peer_urls, client_urls, learner}]``.

    A member that was added but has not started yet has no name and no client URL."""
    members = []
    for member in (body or {}).get('members') or []:
        members.append({
            'id': str(member.get('ID', '')),
            'name': member.get('name') or '',
            'peer_urls': list(member.get('peerURLs') or []),
            'client_urls': list(member.get('clientURLs') or []),
            'learner': bool(member.get('isLearner', False)),
        })
    return members


def split_url(url):
    """(host, port) of ``https://host:port`` (an IPv6 host in brackets)."""
    rest = url.split('://', 1)[-1].split('/', 1)[0]
    if rest.startswith('['):
        host, port = rest[1:].partition(']')[::2]
        port = port.lstrip(':')
    else:
        host, port = rest.rpartition(':')[::2]
    try:
        return host, int(port)
    except ValueError:
        raise EtcdError('%s is not an etcd URL with a port' % url)


def member_by_name(members, name):
    found = [member for member in members if member['name'] == name]
    return found[0] if found else None


def describe(member):
    """``cp2 (id 1234, https://198.51.100.12:2380)`` for messages."""
    return '%s (id %s, %s)' % (member['name'] or 'a member that has not started', member['id'],
                               ', '.join(member['peer_urls']) or 'no peer URL')


class Client:
    """Calls to etcd with the node's etcd CA and kubeadm's apiserver-etcd-client certificate."""

    def __init__(self, root='/', endpoint=LOCAL_ENDPOINT, timeout=5.0, ca=ETCD_CA, cert=CLIENT_CERT, key=CLIENT_KEY):
        texts = [state.read_text(root, path) for path in (ca, cert, key)]
        missing = [path for path, text in zip((ca, cert, key), texts) if not text]
        if missing:
            raise EtcdError('%s missing: this node is not a kubeadm control plane with a stacked etcd'
                            % ', '.join(missing))
        self.context = client_tls_context(*texts)
        self.endpoint = endpoint
        self.timeout = timeout

    def _request(self, url, method, path, body=None, timeout=None):
        host, port = split_url(url)
        connection = http.client.HTTPSConnection(host, port, context=self.context, timeout=timeout or self.timeout)
        try:
            payload = json.dumps(body).encode('utf-8') if body is not None else None
            connection.request(method, path, body=payload, headers={'Content-Type': 'application/json'})
            response = connection.getresponse()
            text = response.read().decode('utf-8', 'replace')
        except (OSError, socket.timeout, http.client.HTTPException) as exc:
            raise EtcdError('etcd at %s did not answer %s %s: %s' % (url, method, path, exc))
        finally:
            connection.close()
        try:
            answer = json.loads(text) if text.strip() else {}
        except ValueError:
            answer = {'message': text.strip()[:200]}
        if response.status != 200:
            why = answer.get('message') or answer.get('error') or text
            raise EtcdError('etcd at %s answered %s %s with HTTP %d: %s' % (url, method, path, response.status, why))
        return answer

    def members(self):
        return parse_members(self._request(self.endpoint, 'POST', '/v3/cluster/member/list', {}))

    def remove(self, member_id):
        """Remove a member by its ID; the members left."""
        return parse_members(self._request(self.endpoint, 'POST', '/v3/cluster/member/remove', {'ID': member_id}))

    def healthy(self, member, timeout=2.0):
        """Whether the member answers ``GET /health`` with ``"health": "true"`` on one of its client URLs."""
        for url in member['client_urls']:
            try:
                answer = self._request(url, 'GET', '/health', timeout=timeout)
            except (EtcdError, ssl.SSLError):
                continue
            if str(answer.get('health')).lower() == 'true':
                return True
        return False

    def members_with_health(self, timeout=2.0):
        members = self.members()
        for member in members:
            member['healthy'] = self.healthy(member, timeout)
        return members
