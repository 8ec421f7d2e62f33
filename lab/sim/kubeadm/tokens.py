"""Bootstrap tokens (``[a-z0-9]{6}.[a-z0-9]{16}``), their Secrets, and the certificate key."""

import base64
import datetime
import secrets

from lab.sim.kubeadm.apiconfig import TOKEN_RE

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
SECRET_TYPE = "bootstrap.kubernetes.io/token"
CERTS_TOKEN_DESCRIPTION = "Proxy for managing TTL for the kubeadm-certs secret"
CERTIFICATE_KEY_BYTES = 32


def new_token():
    pick = lambda n: "".join(secrets.choice(ALPHABET) for _ in range(n))  # noqa: E731
    return f"{pick(6)}.{pick(16)}"


def split_token(token):
    match = TOKEN_RE.match(token)
    if not match:
        raise ValueError(f'the bootstrap token "{token}" was not of the form "[a-z0-9]{{6}}.[a-z0-9]{{16}}"')
    return match.group(1), match.group(2)


def new_certificate_key():
    return secrets.token_hex(CERTIFICATE_KEY_BYTES)


def secret_name(token_id):
    return f"bootstrap-token-{token_id}"


def rfc3339(moment):
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def _b64(text):
    return base64.b64encode(text.encode()).decode()


def token_secret(token, ttl_seconds, usages=("signing", "authentication"), groups=(), description="",
                 now=None):
    """The Secret kubeadm stores for a bootstrap token; ``ttl_seconds`` already scaled (0 = never)."""
    token_id, token_secret_value = split_token(token)
    data = {"token-id": token_id, "token-secret": token_secret_value}
    if description:
        data["description"] = description
    if ttl_seconds:
        now = now or datetime.datetime.now(datetime.timezone.utc)
        data["expiration"] = rfc3339(now + datetime.timedelta(seconds=ttl_seconds))
    for usage in usages:
        data[f"usage-bootstrap-{usage}"] = "true"
    if groups:
        data["auth-extra-groups"] = ",".join(groups)
    return {
        "apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
        "metadata": {"name": secret_name(token_id), "namespace": "kube-system"},
        "data": {key: _b64(value) for key, value in data.items()},
    }


def decode_secret_data(secret):
    return {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}
