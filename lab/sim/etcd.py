"""Client of etcd 3.4's v3 JSON gateway (``/v3/kv/*``, ``/v3/cluster/member/*``) over HTTPS.

Keys and values travel base64-encoded; 64-bit integers travel as JSON strings. The gateway is
served on the client URLs, so it uses the same TLS client certificate as any etcd client
(``apiserver-etcd-client`` for the API server, ``healthcheck-client`` or the etcd CA for kubeadm).
"""

import base64
import http.client
import json
import ssl
import threading
import urllib.parse
from dataclasses import dataclass

API_PREFIX = "/v3"  # etcd 3.4 also serves /v3beta; /v3alpha is gone


class EtcdError(Exception):
    """etcd answered with an error (``message`` is etcd's, e.g. ``etcdserver: unhealthy cluster``)."""

    def __init__(self, message, code=None, endpoint=None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.endpoint = endpoint


class EtcdUnavailable(EtcdError):
    """No endpoint answered."""


@dataclass(frozen=True)
class KeyValue:
    key: bytes
    value: bytes
    mod_revision: int
    create_revision: int
    version: int


def _b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def _prefix_end(prefix):
    """The range_end that selects every key starting with ``prefix``."""
    data = bytearray(prefix.encode() if isinstance(prefix, str) else prefix)
    while data:
        if data[-1] < 0xFF:
            data[-1] += 1
            return bytes(data)
        data.pop()
    return b"\0"


def _kv(raw):
    return KeyValue(key=base64.b64decode(raw.get("key", "")),
                    value=base64.b64decode(raw.get("value", "")),
                    mod_revision=int(raw.get("mod_revision", 0)),
                    create_revision=int(raw.get("create_revision", 0)),
                    version=int(raw.get("version", 0)))


def _member(raw):
    return {"id": int(raw.get("ID", 0)), "name": raw.get("name", ""),
            "peer_urls": list(raw.get("peerURLs", [])), "client_urls": list(raw.get("clientURLs", [])),
            "is_learner": bool(raw.get("isLearner", False))}


class Etcd:
    """Talks to the first endpoint that answers; thread-safe (one connection per thread and endpoint)."""

    def __init__(self, endpoints, ca_file=None, cert_file=None, key_file=None, timeout=5.0):
        if isinstance(endpoints, str):
            endpoints = [e for e in endpoints.split(",") if e]
        if not endpoints:
            raise ValueError("at least one etcd endpoint is required")
        self.endpoints = list(endpoints)
        self.timeout = float(timeout)
        self._ssl = None
        if any(e.startswith("https://") for e in self.endpoints):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            if ca_file:
                ctx.load_verify_locations(ca_file)
            else:
                ctx.load_default_certs()
            if cert_file:
                ctx.load_cert_chain(cert_file, key_file)
            self._ssl = ctx
        self._local = threading.local()
        self._preferred = 0

    def set_endpoints(self, endpoints):
        """Replace the endpoints (clientv3's SetEndpoints, e.g. after a Sync from the member list)."""
        self.endpoints = list(endpoints)
        self._preferred = 0

    # -- transport -------------------------------------------------------------------------

    def _conn(self, endpoint):
        conns = getattr(self._local, "conns", None)
        if conns is None:
            conns = self._local.conns = {}
        conn = conns.get(endpoint)
        if conn is None:
            url = urllib.parse.urlsplit(endpoint)
            if url.scheme == "https":
                conn = http.client.HTTPSConnection(url.hostname, url.port or 2379,
                                                   timeout=self.timeout, context=self._ssl)
            else:
                conn = http.client.HTTPConnection(url.hostname, url.port or 2379, timeout=self.timeout)
            conns[endpoint] = conn
        return conn

    def _drop(self, endpoint):
        conn = self._local.conns.pop(endpoint, None)
        if conn is not None:
            conn.close()

    def _call_endpoint(self, endpoint, method, path, body):
        data = None if body is None else json.dumps(body).encode()
        for attempt in (1, 2):
            conn = self._conn(endpoint)
            reused = conn.sock is not None
            try:
                conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                payload = response.read()
                return response.status, payload
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    http.client.CannotSendRequest):
                self._drop(endpoint)
                if not (reused and attempt == 1):
                    raise
            except (OSError, http.client.HTTPException):
                self._drop(endpoint)
                raise
        raise ConnectionError("unreachable")  # not reached

    def _call(self, method, path, body=None, endpoint=None):
        order = [endpoint] if endpoint else (self.endpoints[self._preferred:] +
                                             self.endpoints[:self._preferred])
        last = None
        for candidate in order:
            try:
                status, payload = self._call_endpoint(candidate, method, path, body)
            except (OSError, http.client.HTTPException) as exc:
                last = f"{candidate}: {exc}"
                continue
            if not endpoint:
                self._preferred = self.endpoints.index(candidate)
            try:
                answer = json.loads(payload or b"{}")
            except ValueError:
                answer = {"error": payload.decode(errors="replace").strip()}
            if status >= 400 or "error" in answer:
                message = answer.get("message") or answer.get("error") or f"HTTP {status}"
                raise EtcdError(message, answer.get("code"), candidate)
            return answer
        raise EtcdUnavailable(f"context deadline exceeded: no etcd endpoint answered ({last})")

    def _post(self, rpc, body, endpoint=None):
        return self._call("POST", f"{API_PREFIX}/{rpc}", body, endpoint)

    # -- key/value -------------------------------------------------------------------------

    def get(self, key):
        """The KeyValue at ``key`` or None."""
        answer = self._post("kv/range", {"key": _b64(key)})
        kvs = answer.get("kvs") or []
        return _kv(kvs[0]) if kvs else None

    def list(self, prefix):
        """Every KeyValue whose key starts with ``prefix``, sorted by key; and the store revision."""
        answer = self._post("kv/range", {"key": _b64(prefix), "range_end": _b64(_prefix_end(prefix))})
        return [_kv(raw) for raw in answer.get("kvs") or []], int(answer["header"].get("revision", 0))

    def revision(self):
        return int(self._post("kv/range", {"key": _b64("\0"), "count_only": True})["header"]["revision"])

    def put(self, key, value):
        """Unconditional write; the new revision."""
        return int(self._post("kv/put", {"key": _b64(key), "value": _b64(value)})["header"]["revision"])

    def _txn(self, compare, success):
        answer = self._post("kv/txn", {"compare": [compare], "success": [success]})
        if not answer.get("succeeded"):
            return None
        return int(answer["header"]["revision"])

    def create(self, key, value):
        """Write only if ``key`` does not exist; the new revision, or None if it exists."""
        return self._txn({"key": _b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"},
                         {"request_put": {"key": _b64(key), "value": _b64(value)}})

    def update(self, key, value, mod_revision):
        """Compare-and-swap on mod_revision; the new revision, or None on conflict (or key gone)."""
        return self._txn({"key": _b64(key), "target": "MOD", "result": "EQUAL",
                          "mod_revision": str(int(mod_revision))},
                         {"request_put": {"key": _b64(key), "value": _b64(value)}})

    def delete(self, key, mod_revision=None):
        """Delete ``key`` (only at ``mod_revision`` when given); True when something was deleted."""
        request = {"request_delete_range": {"key": _b64(key)}}
        if mod_revision is None:
            answer = self._post("kv/deleterange", {"key": _b64(key)})
            return int(answer.get("deleted", 0)) > 0
        revision = self._txn({"key": _b64(key), "target": "MOD", "result": "EQUAL",
                              "mod_revision": str(int(mod_revision))}, request)
        return revision is not None

    # -- cluster membership ----------------------------------------------------------------

    def member_list(self, endpoint=None):
        answer = self._post("cluster/member/list", {}, endpoint)
        return [_member(raw) for raw in answer.get("members") or []]

    def member_add(self, peer_urls, learner=False):
        """Announce a member; returns ``{"member": {...}, "members": [...]}`` (ids as int)."""
        answer = self._post("cluster/member/add", {"peerURLs": list(peer_urls), "isLearner": bool(learner)})
        return {"member": _member(answer.get("member") or {}),
                "members": [_member(raw) for raw in answer.get("members") or []]}

    def member_remove(self, member_id):
        self._post("cluster/member/remove", {"ID": str(int(member_id))})

    def member_promote(self, member_id):
        self._post("cluster/member/promote", {"ID": str(int(member_id))})

    def status(self, endpoint=None):
        """Maintenance Status of one endpoint (``{"leader": id, "raft_index": n, "is_learner": bool}``)."""
        answer = self._post("maintenance/status", {}, endpoint)
        return {"leader": int(answer.get("leader", 0)), "raft_index": int(answer.get("raftIndex", 0)),
                "is_learner": bool(answer.get("isLearner", False))}

    def health(self, endpoint=None):
        """True when the endpoint (default: any) reports ``{"health":"true"}`` on /health."""
        try:
            answer = self._call("GET", "/health", None, endpoint)
        except EtcdError:
            return False
        return str(answer.get("health")).lower() == "true"

    def close(self):
        for endpoint in list(getattr(self._local, "conns", {}) or {}):
            self._drop(endpoint)
