"""``kubeadm token create|list``."""

import base64
import datetime

from lab.sim import k8sclient, kubeconfig, pki
from lab.sim.kubeadm import apiconfig, output, phases, tokens
from lab.sim.kubeadm import paths as P
from lab.sim.kubeadm.errors import KubeadmError
from lab.sim.kubeadm.flags import BOOL, DURATION, STRING, STRINGS, check_mixed_arguments, parse
from lab.sim.kubeadm.runtime import ns_path

CREATE_FLAGS = {
    "certificate-key": (STRING, "", None),
    "config": (STRING, "", None),
    "description": (STRING, "", None),
    "dry-run": (BOOL, "false", None),
    "groups": (STRINGS, apiconfig.DEFAULT_TOKEN_GROUP, None),
    "kubeconfig": (STRING, P.ADMIN_CONF, None),
    "print-join-command": (BOOL, "false", None),
    "ttl": (DURATION, "24h0m0s", None),
    "usages": (STRINGS, "signing,authentication", None),
}
LIST_FLAGS = {
    "dry-run": (BOOL, "false", None),
    "kubeconfig": (STRING, P.ADMIN_CONF, None),
    "output": (STRING, "text", "o"),
    "allow-missing-template-keys": (BOOL, "true", None),
    "show-managed-fields": (BOOL, "false", None),
}


def _client(rt, path):
    try:
        return rt.client(path)
    except (OSError, ValueError) as exc:
        raise KubeadmError(f"failed to load admin kubeconfig: {exc}") from None


def run_create(rt, argv):
    flags, args = parse(argv, CREATE_FLAGS)
    check_mixed_arguments(flags)
    if len(args) > 1:
        raise KubeadmError(f"accepts at most 1 arg(s), received {len(args)}")
    token = args[0] if args else tokens.new_token()
    if not apiconfig.TOKEN_RE.match(token):
        raise KubeadmError(f'the bootstrap token "{token}" was not of the form "[a-z0-9]{{6}}.[a-z0-9]{{16}}"')
    key = flags["certificate-key"]
    if key and not apiconfig.CERT_KEY_RE.match(key):
        raise KubeadmError(apiconfig.invalid("certificateKey", key, "certificate key size must be 32 bytes"))
    for usage in flags["usages"]:
        if usage not in ("signing", "authentication"):
            raise KubeadmError(f'invalid bootstrap token usage string: {usage}, valid usage options: '
                               "[signing authentication]")
    if not flags.is_set("config"):
        from lab.sim.kubeadm.init_cmd import resolve_kubernetes_version
        resolve_kubernetes_version(rt, "stable-1")
    client = _client(rt, flags["kubeconfig"])
    try:
        phases.create_token(client, token, rt.scaled(flags["ttl"]), flags["usages"], flags["groups"],
                            flags["description"])
    except (k8sclient.ApiError, k8sclient.TransportError) as exc:
        token_id = token.split(".")[0]
        raise KubeadmError(f"failed to create or update bootstrap token with name bootstrap-token-{token_id}: "
                           f"unable to create Secret: {exc}") from None
    if not flags["print-join-command"]:
        rt.say(token)
        return 0
    hashes, server = phases.ca_hashes_of(rt.paths(flags["kubeconfig"]))
    command = output.join_command(server.replace("https://", "", 1), token, hashes, bool(key), key)
    rt.say(output.one_line(command))
    return 0


def _human_ttl(seconds):
    if seconds <= 0:
        return "<invalid>"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * 2 or (unit == "m" and seconds >= 60):
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def run_list(rt, argv):
    flags, args = parse(argv, LIST_FLAGS)
    if args:
        raise KubeadmError(f'unknown command "{args[0]}" for "kubeadm token list"')
    client = _client(rt, flags["kubeconfig"])
    try:
        items = client.get(ns_path("kube-system", "secrets")).get("items") or []
    except (k8sclient.ApiError, k8sclient.TransportError) as exc:
        raise KubeadmError(f"failed to list bootstrap tokens: {exc}") from None
    rows = [("TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS")]
    now = datetime.datetime.now(datetime.timezone.utc)
    for item in items:
        if item.get("type") != tokens.SECRET_TYPE:
            continue
        data = tokens.decode_secret_data(item)
        token = f"{data.get('token-id', '')}.{data.get('token-secret', '')}"
        expiration = data.get("expiration")
        if expiration:
            ttl = _human_ttl((tokens.parse_rfc3339(expiration) - now).total_seconds())
        else:
            ttl, expiration = "<forever>", "<never>"
        usages = ",".join(sorted(k[len("usage-bootstrap-"):] for k, v in data.items()
                                 if k.startswith("usage-bootstrap-") and v == "true")) or "<none>"
        rows.append((token, ttl, expiration, usages, data.get("description") or "<none>",
                     data.get("auth-extra-groups") or ""))
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    for row in rows:
        rt.say("   ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return 0
