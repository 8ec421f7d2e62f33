"""Detached JWS (HS256) of bootstrap tokens, as the bootstrapsigner writes and kubeadm join checks.

The controller-manager signs the ``kubeconfig`` of ``kube-public/cluster-info`` with each token's
secret and stores ``jws-kubeconfig-<token-id>`` = ``<protected header>..<signature>`` (the payload
part left empty: detached). kubeadm join recomputes the signature with the token it was given and
compares the strings, so the header serialization must be deterministic.
"""

import base64
import hashlib
import hmac
import json

ALGORITHM = "HS256"


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _header(token_id):
    return _b64url(json.dumps({"alg": ALGORITHM, "kid": token_id}, separators=(",", ":"),
                              sort_keys=True).encode())


def sign(content, token_id, token_secret):
    """Detached compact JWS of ``content`` (str or bytes), keyed by the token secret."""
    if isinstance(content, str):
        content = content.encode()
    protected = _header(token_id)
    signing_input = f"{protected}.{_b64url(content)}".encode()
    signature = hmac.new(token_secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{protected}..{_b64url(signature)}"


def verify(detached, content, token_id, token_secret):
    """True when ``detached`` is the signature of ``content`` by this token (constant-time compare)."""
    if not isinstance(detached, str) or detached.count(".") != 2:
        return False
    expected = sign(content, token_id, token_secret)
    return hmac.compare_digest(expected.encode(), detached.encode())
