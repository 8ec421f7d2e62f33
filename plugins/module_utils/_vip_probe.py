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

import errno
import http.client
import socket
import ssl
import time

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
        return ('no answer from %s within %ss: no node answers for the VIP (no ARP/route, kube-vip does not '
                'hold the address yet) or a firewall drops the packets' % (where, timeout))
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


def probe_once(address, port, context, path='/livez', timeout=5.0):
    """One attempt through the three stages."""
    try:
        raw = socket.create_connection((address, port), timeout=timeout)
    except (OSError, socket.timeout) as exc:
        return ProbeResult('tcp', False, _tcp_reason(exc, address, port, timeout))
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
