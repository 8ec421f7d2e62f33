# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Does the API server answer through the VIP? A staged probe with the standard library only.

Stages, in order: ``tcp`` (connect to address:port), ``tls`` (handshake verified against the
cluster CA, the VIP checked as the certificate's name), ``http`` (``GET <path>`` returns 200).
A probe that passes all three reports ``ready``. Failures keep the stage and a reason that
tells the user where the VIP path breaks.
"""

from __future__ import annotations

import calendar
import errno
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import tempfile
import time

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm_state as state

# OpenSSL verification codes (x509_vfy.h) that tell "unknown CA" from "wrong name".
_UNKNOWN_CA_CODES = {2, 18, 19, 20, 21}
_NAME_MISMATCH_CODES = {62, 63, 64}
_EXPIRED_CODES = {9, 10}


class ProbeResult:
    """The outcome of one attempt: ``stage`` reached, ``ok``, ``reason`` and the HTTP ``status``."""

    def __init__(self, stage, ok, reason, status=None):
        self.stage = stage
        self.ok = ok
        self.reason = reason
        self.status = status

    def __repr__(self):
        return 'ProbeResult(%r, %r, %r, %r)' % (self.stage, self.ok, self.reason, self.status)


def tls_context(ca_pem):
    """A client context that trusts only the cluster CA and checks the server name (or IP SAN)."""
    context = ssl.create_default_context(cadata=ca_pem)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _tcp_reason(exc, address, port, timeout):
    where = '%s:%s' % (address, port)
    if isinstance(exc, ConnectionRefusedError):
        return ('connection refused at %s: the address answers but nothing listens on the port '
                '(the API server is not running on the node that holds the VIP)' % where)
    if isinstance(exc, socket.timeout):
        # %g of the rounded value: the last probe before the deadline gets what is left (0.17859509800018714 s)
        return ('no answer from %s within %gs: no node answers for the VIP (no ARP/route, kube-vip does not '
                'hold the address yet) or a firewall drops the packets' % (where, round(timeout, 1)))
    code = getattr(exc, 'errno', None)
    if code == errno.EHOSTUNREACH:
        return 'no route to host %s: nothing answers ARP for the VIP (kube-vip does not hold the address)' % where
    if code == errno.ENETUNREACH:
        return 'network unreachable for %s: this host has no route to the VIP\'s network' % where
    return 'cannot connect to %s: %s' % (where, exc)


def _tls_reason(exc, address):
    code = getattr(exc, 'verify_code', None)
    message = getattr(exc, 'verify_message', None) or str(exc)
    if code in _UNKNOWN_CA_CODES:
        return ('TLS: the server certificate is not signed by the given cluster CA (%s): the VIP leads to '
                'another cluster or the CA is wrong' % message)
    if code in _NAME_MISMATCH_CODES:
        return ('TLS: the server certificate is not valid for %s (%s): add the VIP to the API server '
                'certSANs' % (address, message))
    if code in _EXPIRED_CODES:
        return 'TLS: the server certificate is expired or not yet valid (%s)' % message
    return 'TLS handshake failed: %s' % message


# A connect to a VIP that nobody holds waits for ARP resolution (about 3 s) and goes on waiting after the VIP
# is back (for instance on this very node): give up sooner and try again. On the VIP's own network a connect
# takes milliseconds (a lost SYN is resent only after 1 s, and the next attempt covers that).
CONNECT_TIMEOUT = 0.5


def probe_once(address, port, context, path='/livez', timeout=5.0, connect_timeout=CONNECT_TIMEOUT):
    """One attempt through the three stages; the TCP connect waits at most ``connect_timeout``."""
    connect_timeout = min(timeout, connect_timeout)
    try:
        raw = socket.create_connection((address, port), timeout=connect_timeout)
    except (OSError, socket.timeout) as exc:
        return ProbeResult('tcp', False, _tcp_reason(exc, address, port, connect_timeout))
    raw.settimeout(timeout)
    try:
        try:
            sock = context.wrap_socket(raw, server_hostname=address)
        except ssl.SSLCertVerificationError as exc:
            return ProbeResult('tls', False, _tls_reason(exc, address))
        except (ssl.SSLError, OSError, socket.timeout) as exc:
            return ProbeResult('tls', False, 'TLS handshake failed: %s' % exc)
        raw = sock
        try:
            host = '[%s]' % address if ':' in address else address
            request = 'GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: */*\r\nConnection: close\r\n\r\n' % (path, host, port)
            sock.sendall(request.encode('ascii'))
            response = http.client.HTTPResponse(sock)
            response.begin()
            body = response.read(300).decode('utf-8', 'replace').strip()
        except (OSError, socket.timeout, http.client.HTTPException) as exc:
            return ProbeResult('http', False, 'HTTP GET %s failed: %s' % (path, exc))
        if response.status == 200:
            return ProbeResult('ready', True, 'GET %s returned 200' % path, 200)
        return ProbeResult('http', False, 'GET %s returned HTTP %d %s%s' % (
            path, response.status, response.reason, (': ' + body[:200]) if body else ''), response.status)
    finally:
        try:
            raw.close()
        except OSError:
            pass


def wait_for_vip(address, port, ca_pem, path='/livez', timeout=300.0, delay=0.0, sleep=2.0,
                 attempt_timeout=5.0, clock=time.monotonic, pause=time.sleep, max_attempts=None):
    """Probe until ``ready`` or until ``timeout`` seconds passed; return a dict for the module."""
    context = tls_context(ca_pem)
    start = clock()
    if delay:
        pause(delay)
    attempts = 0
    while True:
        remaining = timeout - (clock() - start)
        result = probe_once(address, port, context, path, max(0.1, min(attempt_timeout, remaining)))
        attempts += 1
        elapsed = round(clock() - start, 3)
        summary = {'ready': result.ok, 'stage': result.stage, 'reason': result.reason, 'status': result.status,
                   'attempts': attempts, 'elapsed': elapsed}
        if result.ok or (max_attempts and attempts >= max_attempts):
            return summary
        if clock() - start + sleep >= timeout:
            return summary
        pause(sleep)


# --- kube-vip restarted by the kubelet ---------------------------------------------------------
#
# When a node's kube-vip manifest changes, the kubelet stops the running kube-vip, which drops the VIP and
# releases its Lease, and starts the new one, which takes the Lease (or another node does) and the VIP.
# A probe made before the kubelet noticed the change passes on the old kube-vip and the next request finds
# no VIP. The Lease tells old from new: its acquireTime is later than the manifest once a kube-vip took it
# after the change.

_MICRO_TIME = re.compile(r'^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$')


def parse_micro_time(text):
    """Seconds since the epoch of a Kubernetes MicroTime/Time (``2026-11-26T12:00:00.123456Z``); None if not one."""
    match = _MICRO_TIME.match(text or '')
    if not match:
        return None
    whole = calendar.timegm(time.strptime(match.group(1), '%Y-%m-%dT%H:%M:%S'))
    return whole + (float('0.' + match.group(2)) if match.group(2) else 0.0)


def vip_is_local(address):
    """Whether ``address`` is on one of this host's interfaces (binding to it works only then)."""
    family = socket.AF_INET6 if ':' in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((address, 0))
        return True
    except OSError:
        return False
    finally:
        sock.close()


def kube_vip_replaced(vip_local, lease, changed_at):
    """(done, why): has the kube-vip that held the VIP when the manifest changed (at ``changed_at``) gone?

    ``vip_local``: the VIP is on this node; ``lease``: the Lease object or None when unreadable. A VIP that is
    not here was never held here or was dropped by the stopping kube-vip: the VIP probe waits for its return.
    """
    if not vip_local:
        return True, 'the VIP is not on this node'
    if lease is None:
        return False, 'the VIP is on this node and its Lease cannot be read yet'
    spec = lease.get('spec') or {}
    holder = spec.get('holderIdentity') or ''
    acquired = parse_micro_time(spec.get('acquireTime'))
    if not holder:
        return False, 'the VIP is on this node and its Lease has no holder (kube-vip is restarting)'
    if acquired is None or acquired <= changed_at:
        return False, ('the VIP is on this node and %s has held its Lease since %s, before the manifest changed: '
                       'the kubelet has not restarted kube-vip yet' % (holder, spec.get('acquireTime')))
    return True, '%s took the Lease at %s, after the manifest changed' % (holder, spec.get('acquireTime'))


def wait_for_kube_vip_restart(address, changed_at, read_lease, timeout, sleep=0.2,
                              clock=time.monotonic, pause=time.sleep, is_local=vip_is_local):
    """Poll until :func:`kube_vip_replaced`; ``read_lease()`` returns the Lease or raises OSError/ValueError."""
    start = clock()
    while True:
        vip_local = is_local(address)
        lease = None
        if vip_local:
            try:
                lease = read_lease()
            except (OSError, ValueError, ssl.SSLError, http.client.HTTPException):
                lease = None
        done, why = kube_vip_replaced(vip_local, lease, changed_at)
        elapsed = round(clock() - start, 3)
        if done or elapsed + sleep >= timeout:
            return {'restarted': done, 'reason': why, 'elapsed': elapsed}
        pause(sleep)


def client_tls_context(ca_pem, cert_pem, key_pem):
    """:func:`tls_context` that also presents a client certificate (loaded from a private temporary dir)."""
    context = tls_context(ca_pem)
    directory = tempfile.mkdtemp(prefix='vipadm-')  # mode 0700: the key never sits where others can read it
    try:
        paths = [os.path.join(directory, name) for name in ('client.crt', 'client.key')]
        for path, pem in zip(paths, (cert_pem, key_pem)):
            state.write_private_file(path, pem)
        context.load_cert_chain(paths[0], paths[1])
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return context


def get_json(host, port, context, path, timeout=2.0):
    """``GET path`` over HTTPS; the decoded JSON body, or ValueError with the status for anything but 200."""
    connection = http.client.HTTPSConnection(host, port, context=context, timeout=timeout)
    try:
        connection.request('GET', path, headers={'Accept': 'application/json'})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise ValueError('GET %s returned HTTP %d' % (path, response.status))
    return json.loads(body.decode('utf-8'))


def lease_path(namespace, name):
    return '/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s' % (namespace, name)
