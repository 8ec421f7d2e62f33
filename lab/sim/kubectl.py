"""A small kubectl for the lab nodes: ``get``, ``get --raw``, ``version``, with kubectl's output and
error texts. Run as ``python3 -m lab.sim.kubectl [--kubeconfig PATH] get nodes -o wide``."""

import datetime
import json
import os
import sys
import urllib.parse

from lab.sim import config as sim_config
from lab.sim import kubeconfig as kubeconfig_mod
from lab.sim.k8sclient import ApiError, Client, TransportError

DEFAULT_KUBECONFIG = "/etc/kubernetes/admin.conf"
KUSTOMIZE_VERSION = "v5.5.0"

# type -> (group/version prefix, plural, namespaced, singular for -o name, group)
TYPES = {
    "nodes": ("/api/v1", "nodes", False, "node", ""),
    "namespaces": ("/api/v1", "namespaces", False, "namespace", ""),
    "configmaps": ("/api/v1", "configmaps", True, "configmap", ""),
    "secrets": ("/api/v1", "secrets", True, "secret", ""),
    "leases": ("/apis/coordination.k8s.io/v1", "leases", True, "lease", "coordination.k8s.io"),
    "certificatesigningrequests": ("/apis/certificates.k8s.io/v1", "certificatesigningrequests", False,
                                   "certificatesigningrequest", "certificates.k8s.io"),
    "clusterrolebindings": ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False,
                            "clusterrolebinding", "rbac.authorization.k8s.io"),
    "rolebindings": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True, "rolebinding",
                     "rbac.authorization.k8s.io"),
}
ALIASES = {"node": "nodes", "no": "nodes", "namespace": "namespaces", "ns": "namespaces",
           "configmap": "configmaps", "cm": "configmaps", "secret": "secrets", "lease": "leases",
           "csr": "certificatesigningrequests", "certificatesigningrequest": "certificatesigningrequests",
           "clusterrolebinding": "clusterrolebindings", "rolebinding": "rolebindings"}


class UsageError(Exception):
    pass


def human_duration(seconds):
    """kubectl's AGE column (k8s.io/apimachinery duration.HumanDuration)."""
    seconds = int(max(seconds, 0))
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    years = days // 365
    return f"{years}y{days % 365}d" if hours < 24 * 365 * 8 and days % 365 else f"{years}y"


def _age(obj):
    stamp = (obj.get("metadata") or {}).get("creationTimestamp")
    if not stamp:
        return "<unknown>"
    created = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    return human_duration((datetime.datetime.now(datetime.timezone.utc) - created).total_seconds())


def _node_row(obj, wide):
    status = obj.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    state = "Ready" if ready and ready.get("status") == "True" else "NotReady"
    if (obj.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    labels = (obj.get("metadata") or {}).get("labels") or {}
    roles = sorted(k.split("/", 1)[1] for k in labels if k.startswith("node-role.kubernetes.io/") and "/" in k)
    info = status.get("nodeInfo") or {}
    row = [obj["metadata"]["name"], state, ",".join(roles) or "<none>", _age(obj),
           info.get("kubeletVersion", "")]
    if wide:
        addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
        row += [addresses.get("InternalIP", "<none>"), addresses.get("ExternalIP", "<none>"),
                info.get("osImage", "<unknown>"), info.get("kernelVersion", "<unknown>"),
                info.get("containerRuntimeVersion", "<unknown>")]
    return row


def _csr_condition(obj):
    conditions = [c.get("type") for c in (obj.get("status") or {}).get("conditions") or []]
    text = ",".join(conditions) or "Pending"
    if obj.get("status", {}).get("certificate") and "Approved" in conditions:
        text += ",Issued"
    return text


COLUMNS = {
    "nodes": (["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
              ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"], _node_row),
    "namespaces": (["NAME", "STATUS", "AGE"], [],
                   lambda o, w: [o["metadata"]["name"], (o.get("status") or {}).get("phase", "Active"), _age(o)]),
    "configmaps": (["NAME", "DATA", "AGE"], [],
                   lambda o, w: [o["metadata"]["name"], str(len(o.get("data") or {}) +
                                                            len(o.get("binaryData") or {})), _age(o)]),
    "secrets": (["NAME", "TYPE", "DATA", "AGE"], [],
                lambda o, w: [o["metadata"]["name"], o.get("type", "Opaque"), str(len(o.get("data") or {})),
                              _age(o)]),
    "leases": (["NAME", "HOLDER", "AGE"], [],
               lambda o, w: [o["metadata"]["name"], (o.get("spec") or {}).get("holderIdentity", ""), _age(o)]),
    "certificatesigningrequests": (
        ["NAME", "AGE", "SIGNERNAME", "REQUESTOR", "REQUESTEDDURATION", "CONDITION"], [],
        lambda o, w: [o["metadata"]["name"], _age(o), o["spec"].get("signerName", ""),
                      o["spec"].get("username", ""), "<none>", _csr_condition(o)]),
    "clusterrolebindings": (["NAME", "ROLE", "AGE"], [],
                            lambda o, w: [o["metadata"]["name"],
                                          f"{o['roleRef']['kind']}/{o['roleRef']['name']}", _age(o)]),
    "rolebindings": (["NAME", "ROLE", "AGE"], [],
                     lambda o, w: [o["metadata"]["name"], f"{o['roleRef']['kind']}/{o['roleRef']['name']}",
                                   _age(o)]),
}


def table(rows):
    """kubectl's tabwriter layout: columns padded to the widest cell plus three spaces."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("".join(cell.ljust(widths[i] + 3) if i < len(row) - 1 else cell
                             for i, cell in enumerate(row)) for row in rows) + "\n"


def parse_args(argv):
    opts = {"kubeconfig": None, "namespace": None, "all_namespaces": False, "output": None, "raw": None,
            "server": None, "positional": [], "client_only": False}
    args = list(argv)
    index = 0

    def value(flag):
        nonlocal index
        if index >= len(args):
            raise UsageError(f"flag needs an argument: {flag}")
        index += 1
        return args[index - 1]
    while index < len(args):
        arg = args[index]
        index += 1
        name, has_value, inline = arg.partition("=")
        take = (lambda: inline) if has_value else (lambda n=name: value(n))
        if name == "--kubeconfig":
            opts["kubeconfig"] = take()
        elif name in ("-n", "--namespace"):
            opts["namespace"] = take()
        elif name in ("-A", "--all-namespaces"):
            opts["all_namespaces"] = True
        elif name in ("-o", "--output"):
            opts["output"] = take()
        elif name == "--raw":
            opts["raw"] = take()
        elif name in ("-s", "--server"):
            opts["server"] = take()
        elif name == "--client":
            opts["client_only"] = True
        elif arg.startswith("-o") and len(arg) > 2:
            opts["output"] = arg[2:]
        elif arg.startswith("-n") and len(arg) > 2:
            opts["namespace"] = arg[2:]
        elif arg.startswith("-") and arg != "-":
            raise UsageError(f"unknown flag: {name}" if name.startswith("--") else f"unknown shorthand flag: "
                             f"'{name[1:2]}' in {name}")
        else:
            opts["positional"].append(arg)
    if opts["output"] not in (None, "json", "yaml", "name", "wide"):
        raise UsageError(f'unable to match a printer suitable for the output format "{opts["output"]}", allowed '
                         'formats are: json,name,wide,yaml')
    return opts


def make_client(opts):
    path = opts["kubeconfig"] or os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG
    explicit = bool(opts["kubeconfig"] or os.environ.get("KUBECONFIG"))
    if not os.path.exists(path):
        if explicit:
            raise UsageError(f"stat {path}: no such file or directory")
        raise TransportError("The connection to the server localhost:8080 was refused - did you specify the "
                             "right host or port?")
    loaded = kubeconfig_mod.load(path)
    creds = kubeconfig_mod.credentials(loaded, path)
    context = next((c.get("context") or {} for c in loaded.get("contexts") or []
                    if c.get("name") == loaded.get("current-context")), {})
    client = Client(opts["server"] or creds.server, ca_pem=creds.ca_pem, cert_pem=creds.cert_pem,
                    key_pem=creds.key_pem, token=creds.token, insecure=creds.insecure,
                    tls_server_name=creds.tls_server_name, timeout=32.0, user_agent="kubectl/lab-sim")
    return client, context.get("namespace") or "default"


def _with_kind(obj, resource):
    prefix, _, _, singular, group = TYPES[resource]
    obj.setdefault("apiVersion", prefix.split("/", 2)[-1] if group else "v1")
    obj.setdefault("kind", singular[0].upper() + singular[1:])
    return obj


def cmd_get(opts, out):
    client, default_ns = make_client(opts)
    if opts["raw"] is not None:
        out.write(client.request("GET", opts["raw"], raw=True).decode(errors="replace"))
        return 0
    if not opts["positional"]:
        raise UsageError("You must specify the type of resource to get. Use \"kubectl api-resources\" for a "
                         "complete list of supported resources.")
    kind, names = opts["positional"][0], opts["positional"][1:]
    resource = ALIASES.get(kind.split(".")[0], kind.split(".")[0])
    if resource not in TYPES:
        raise UsageError(f'the server doesn\'t have a resource type "{kind}"')
    prefix, plural, namespaced, singular, group = TYPES[resource]
    namespace = opts["namespace"] or default_ns
    if namespaced and not opts["all_namespaces"]:
        base = f"{prefix}/namespaces/{urllib.parse.quote(namespace)}/{plural}"
    else:
        base = f"{prefix}/{plural}"
    if names:
        items = [client.get(f"{base}/{urllib.parse.quote(n)}") for n in names]
    else:
        items = client.get(base)["items"]
    items = [_with_kind(o, resource) for o in items]
    output = opts["output"]
    if output in ("json", "yaml"):
        doc = items[0] if len(names) == 1 else {"apiVersion": "v1", "items": items, "kind": "List",
                                                "metadata": {"resourceVersion": ""}}
        if output == "json":
            out.write(json.dumps(doc, indent=4) + "\n")
        else:
            import yaml  # pylint: disable=import-outside-toplevel
            out.write(yaml.safe_dump(doc, default_flow_style=False))
        return 0
    if not items:
        where = f" in {namespace} namespace" if namespaced and not opts["all_namespaces"] else ""
        sys.stderr.write(f"No resources found{where}.\n")
        return 0
    if output == "name":
        qualified = f"{singular}.{group}" if group else singular
        out.write("".join(f"{qualified}/{o['metadata']['name']}\n" for o in items))
        return 0
    headers, wide_headers, row = COLUMNS[resource]
    wide = output == "wide"
    rows = [headers + (wide_headers if wide else [])]
    rows += [row(o, wide) for o in items]
    if namespaced and opts["all_namespaces"]:
        rows = [["NAMESPACE"] + rows[0]] + [[o["metadata"].get("namespace", "")] + r
                                           for o, r in zip(items, rows[1:])]
    out.write(table(rows))
    return 0


def cmd_version(opts, out):
    client_version = str(sim_config.load().kubernetes_version)
    server = None
    if not opts["client_only"]:
        client, _ = make_client(opts)
        server = client.get("/version")
    if opts["output"] == "json":
        doc = {"clientVersion": {"major": client_version.split(".")[0][1:],
                                 "minor": client_version.split(".")[1], "gitVersion": client_version},
               "kustomizeVersion": KUSTOMIZE_VERSION}
        if server:
            doc["serverVersion"] = server
        out.write(json.dumps(doc, indent=2) + "\n")
        return 0
    out.write(f"Client Version: {client_version}\nKustomize Version: {KUSTOMIZE_VERSION}\n")
    if server:
        out.write(f"Server Version: {server.get('gitVersion')}\n")
    return 0


def main(argv=None, out=None):
    argv = sys.argv[1:] if argv is None else argv
    out = out or sys.stdout
    try:
        opts = parse_args(argv)
        command = opts["positional"].pop(0) if opts["positional"] else None
        if command == "get":
            return cmd_get(opts, out)
        if command == "version":
            return cmd_version(opts, out)
        raise UsageError(f'unknown command "{command}" for "kubectl"' if command else
                         "the lab kubectl supports: get, version")
    except UsageError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except ApiError as exc:
        sys.stderr.write(f"Error from server ({exc.reason}): {exc}\n")
        return 1
    except TransportError as exc:
        text = str(exc)
        if text.startswith("The connection to the server"):
            sys.stderr.write(text + "\n")
        elif text.endswith("connect: connection refused"):
            host = text.split("dial tcp ", 1)[1].split(":")[0] if "dial tcp " in text else ""
            port = text.split("dial tcp ", 1)[1].split(":")[1] if "dial tcp " in text else ""
            sys.stderr.write(f"The connection to the server {host}:{port} was refused - did you specify the right "
                             "host or port?\n")
        else:
            sys.stderr.write(f"Unable to connect to the server: {text.split(': ', 1)[-1]}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
