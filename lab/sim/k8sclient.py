"""A small Kubernetes REST client for the simulator (kubeadm, kubelet, kube-vip, kubectl, kcm).

Errors look like client-go's: :class:`ApiError` carries the server's ``Status``; :class:`TransportError`
reads like Go's ``net/http`` errors (``Get "https://h:6443/p?timeout=10s": dial tcp h:6443: connect:
connection refused``) because kubeadm prints them verbatim.
"""

import errno
import http.client
import json
import os
import socket
import ssl
import tempfile
import threading
import urllib.parse

from lab.sim.config import go_duration
from lab.sim import kubeconfig as kubeconfig_mod


class ApiError(Exception):
    """A non-2xx answer. ``str()`` is the Status message, as client-go prints it."""

    def __init__(self, status, reason, message, details=None):
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.details = details or {}

    def __str__(self):
        return self.message


class TransportError(OSError):
    """No HTTP answer (refused, unreachable, timeout, TLS failure); ``str()`` is Go-like."""

    def __init__(self, message, cause=None):
        super().__init__(message)
        self.message = message
        self.cause = cause

    def __str__(self):
        return self.message


_GO_METHOD = {"GET": "Get", "POST": "Post", "PUT": "Put", "DELETE": "Delete", "PATCH": "Patch",
              "HEAD": "Head"}
_ERRNO_TEXT = {
    errno.ECONNREFUSED: "connect: connection refused",
    errno.EHOSTUNREACH: "connect: no route to host",
    errno.ENETUNREACH: "connect: network is unreachable",
    errno.ETIMEDOUT: "i/o timeout",
    errno.EADDRNOTAVAIL: "connect: cannot assign requested address",
}


def _nameserver():
    try:
        with open("/etc/resolv.conf", encoding="utf-8") as handle:
            for line in handle:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    return f"{parts[1]}:53"
    except OSError:
        pass
    return "127.0.0.1:53"


def _tls_alert_text(exc):
    reason = (exc.reason or "").upper()
    for marker, text in (("BAD_CERTIFICATE", "remote error: tls: bad certificate"),
                         ("UNKNOWN_CA", "remote error: tls: bad certificate"),  # what a Go server sends
                         ("CERTIFICATE_REQUIRED", "remote error: tls: certificate required"),
                         ("WRONG_VERSION_NUMBER", "tls: first record does not look like a TLS handshake")):
        if marker in reason:
            return text
    return f"tls: {(exc.reason or str(exc)).lower().replace('_', ' ')}"


def _hostport(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _status_from_body(code, reason_phrase, body):
    """Turn an error response into an ApiError the way client-go does."""
    try:
        data = json.loads(body.decode() or "null")
    except (ValueError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict) and data.get("kind") == "Status":
        return ApiError(data.get("code", code), data.get("reason", ""), data.get("message", ""),
                        data.get("details"))
    text = body.decode(errors="replace").strip()
    reason = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
              500: "InternalError", 503: "ServiceUnavailable"}.get(code, reason_phrase)
    if text:
        message = f'an error on the server ("{text}") has prevented the request from succeeding'
    else:
        message = f"the server responded with the status code {code} but did not return more information"
    return ApiError(code, reason, message)


class Client:
    """HTTPS client of one API server. Thread-safe: one kept-alive connection per thread."""

    def __init__(self, server, ca_pem=None, cert_pem=None, key_pem=None, token=None,
                 insecure=False, timeout=10.0, tls_server_name=None, user_agent="lab-sim"):
        parsed = urllib.parse.urlsplit(server)
        if parsed.scheme != "https" or not parsed.hostname:
            raise ValueError(f'server "{server}" must be an https:// URL')
        self.server = server.rstrip("/")
        self.host = parsed.hostname
        self.port = parsed.port or 443
        self.token = token
        self.timeout = float(timeout)
        self.tls_server_name = tls_server_name
        self.user_agent = user_agent
        self._ssl = self._context(ca_pem, cert_pem, key_pem, insecure)
        self._local = threading.local()

    @classmethod
    def from_kubeconfig(cls, path, server=None, **kwargs):
        creds = kubeconfig_mod.load_credentials(path)
        return cls(server or creds.server, ca_pem=creds.ca_pem, cert_pem=creds.cert_pem,
                   key_pem=creds.key_pem, token=creds.token, insecure=creds.insecure,
                   tls_server_name=creds.tls_server_name, **kwargs)

    @staticmethod
    def _context(ca_pem, cert_pem, key_pem, insecure):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif ca_pem:
            ctx.load_verify_locations(cadata=ca_pem.decode() if isinstance(ca_pem, bytes) else ca_pem)
        else:
            ctx.load_default_certs()
        if cert_pem and key_pem:
            # ssl loads a client certificate only from files: a private directory, removed at once.
            with tempfile.TemporaryDirectory(prefix="k8sclient-") as tmp:
                cert_path = os.path.join(tmp, "c.pem")
                key_path = os.path.join(tmp, "k.pem")
                for path, data in ((cert_path, cert_pem), (key_path, key_pem)):
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
                    with os.fdopen(fd, "wb") as handle:
                        handle.write(data if isinstance(data, bytes) else data.encode())
                ctx.load_cert_chain(cert_path, key_path)
        return ctx

    # -- transport -------------------------------------------------------------------------

    def _url(self, path):
        if "timeout=" not in path:
            path += ("&" if "?" in path else "?") + f"timeout={go_duration(self.timeout)}"
        return path

    def _connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                               context=self._ssl)
            if self.tls_server_name:
                # http.client has no server-name override: wrap the socket ourselves.
                conn.connect = lambda c=conn: self._connect_with_sni(c)
            self._local.conn = conn
            self._local.fresh = True
        return conn

    def _connect_with_sni(self, conn):
        sock = socket.create_connection((self.host, self.port), self.timeout)
        conn.sock = self._ssl.wrap_socket(sock, server_hostname=self.tls_server_name)

    def close(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _go_error(self, method, url, exc):
        prefix = f'{_GO_METHOD.get(method, method.title())} "{self.server}{url}"'
        dial = f"dial tcp {_hostport(self.host, self.port)}"
        if isinstance(exc, socket.gaierror):
            return f"{prefix}: dial tcp: lookup {self.host} on {_nameserver()}: no such host"
        if isinstance(exc, ssl.SSLCertVerificationError):
            return f"{prefix}: tls: failed to verify certificate: {self._x509_text(exc)}"
        if isinstance(exc, ssl.SSLError):
            return f"{prefix}: {_tls_alert_text(exc)}"
        if isinstance(exc, (socket.timeout, TimeoutError)):
            if getattr(self._local, "connected", False):
                return (f"{prefix}: net/http: request canceled (Client.Timeout exceeded while "
                        "awaiting headers)")
            return f"{prefix}: {dial}: i/o timeout"
        if isinstance(exc, (http.client.RemoteDisconnected, http.client.IncompleteRead)):
            return f"{prefix}: EOF"
        if isinstance(exc, ConnectionResetError):
            return f"{prefix}: read tcp {_hostport(self.host, self.port)}: read: connection reset by peer"
        if isinstance(exc, OSError) and exc.errno in _ERRNO_TEXT:
            return f"{prefix}: {dial}: {_ERRNO_TEXT[exc.errno]}"
        return f"{prefix}: {dial}: {exc}"

    def _x509_text(self, exc):
        if "Hostname mismatch" in str(exc) or "IP address mismatch" in str(exc):
            names = self._peer_names()
            if names:
                return f"x509: certificate is valid for {', '.join(names)}, not {self.host}"
            return f"x509: certificate is not valid for {self.host}"
        if "expired" in str(exc):
            return "x509: certificate has expired or is not yet valid"
        return "x509: certificate signed by unknown authority"

    def _peer_names(self):
        """SANs of the server certificate, read through an unverified handshake (error path only)."""
        try:
            from cryptography import x509  # pylint: disable=import-outside-toplevel
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with socket.create_connection((self.host, self.port), self.timeout) as sock:
                with ctx.wrap_socket(sock) as tls:
                    der = tls.getpeercert(binary_form=True)
            san = x509.load_der_x509_certificate(der).extensions.get_extension_for_class(
                x509.SubjectAlternativeName).value
            return [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] + \
                san.get_values_for_type(x509.DNSName)
        except Exception:  # pylint: disable=broad-except
            return []

    def request(self, method, path, body=None, content_type="application/json", raw=False):
        """Send one request; the decoded JSON answer (``raw``: the body bytes)."""
        url = self._url(path)
        headers = {"Accept": "application/json", "User-Agent": self.user_agent}
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = content_type
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        for attempt in (1, 2):
            conn = self._connection()
            reused = not self._local.fresh
            self._local.connected = conn.sock is not None
            try:
                if conn.sock is None:
                    conn.connect()
                    self._local.connected = True
                conn.request(method, url, body=data, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                self._local.fresh = False
                if response.getheader("Connection", "").lower() == "close":
                    self.close()
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    http.client.CannotSendRequest) as exc:
                self.close()
                if reused and attempt == 1:
                    continue  # a kept-alive connection the server closed meanwhile
                raise TransportError(self._go_error(method, url, exc), exc) from None
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                raise TransportError(self._go_error(method, url, exc), exc) from None
        if not 200 <= response.status < 300:
            raise _status_from_body(response.status, response.reason, payload)
        if raw:
            return payload
        if not payload:
            return {}
        try:
            return json.loads(payload)
        except ValueError:
            return payload.decode(errors="replace")

    def get(self, path):
        return self.request("GET", path)

    def create(self, path, obj):
        return self.request("POST", path, obj)

    def update(self, path, obj):
        return self.request("PUT", path, obj)

    def patch(self, path, patch):
        return self.request("PATCH", path, patch, content_type="application/merge-patch+json")

    def delete(self, path):
        return self.request("DELETE", path)
