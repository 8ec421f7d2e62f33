"""The kubeadm-certs Secret: shared control plane certificates encrypted with the certificate key.

As kubeadm's cryptoutil: AES-256-GCM, a random 12-byte nonce prepended to the sealed data.
"""

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lab.sim.kubeadm.certs import SHARED_FILES
from lab.sim.kubeadm.errors import KubeadmError

SECRET_NAME = "kubeadm-certs"
NONCE_BYTES = 12


def decode_key(key_hex):
    try:
        key = bytes.fromhex(key_hex)
    except ValueError:
        raise KubeadmError(f"error decoding certificate key: encoding/hex: invalid byte in {key_hex!r}") from None
    if len(key) != 32:
        raise KubeadmError(f"error decoding certificate key: invalid key length {len(key)}")
    return key


def encrypt(data, key):
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, data, None)


def decrypt(sealed, key):
    if len(sealed) < NONCE_BYTES:
        raise KubeadmError("error decoding secret data with provided key: data size is too small")
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], None)
    except InvalidTag:
        raise KubeadmError("error decoding secret data with provided key: cipher: message authentication failed") from None


def secret_key(file_name):
    return file_name.replace("/", "-")


def build_secret(files, key, owner=None):
    """Secret kube-system/kubeadm-certs from {file name: bytes}; ``owner`` = the TTL token Secret."""
    metadata = {"name": SECRET_NAME, "namespace": "kube-system"}
    if owner is not None:
        metadata["ownerReferences"] = [{
            "apiVersion": "v1", "kind": "Secret", "name": owner["metadata"]["name"],
            "uid": owner["metadata"].get("uid", ""), "controller": True, "blockOwnerDeletion": True,
        }]
    data = {secret_key(name): base64.b64encode(encrypt(content, key)).decode() for name, content in files.items()}
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": metadata, "data": data}


def open_secret(secret, key):
    """{file name: bytes} of the shared files present in the Secret."""
    data = secret.get("data") or {}
    out = {}
    for name in SHARED_FILES:
        sealed = data.get(secret_key(name))
        if sealed is not None:
            out[name] = decrypt(base64.b64decode(sealed), key)
    return out
