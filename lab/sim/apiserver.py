"""The simulated kube-apiserver: HTTPS, client-certificate and bootstrap-token authentication,
the authorization kubeadm, the kubelet and kube-vip depend on, objects stored in etcd.

Run as ``python3 -m lab.sim.apiserver <the flags of kubeadm's kube-apiserver manifest>``.
Only ``ssl``/``http.server``/``json`` are imported: one of these runs on every control-plane node.
"""

import base64
import datetime
import http.server
import json
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import uuid

from lab.sim import config as sim_config
from lab.sim.etcd import Etcd, EtcdError

# -- flags ---------------------------------------------------------------------------------

BOOL_FLAGS = {
    "allow-privileged", "enable-bootstrap-token-auth", "anonymous-auth", "profiling",
    "enable-aggregator-routing", "enable-priority-and-fairness", "enable-garbage-collector",
    "logtostderr", "alsologtostderr", "watch-cache", "delete-collection-workers-enabled",
    "service-account-lookup", "storage-media-type-enabled", "strict-transport-security-directives-enabled",
    "help", "version", "enable-logs-handler", "contention-profiling", "audit-log-compress",
    "kubelet-https", "enable-swagger-ui", "permit-port-sharing", "permit-address-sharing",
}
VALUE_FLAGS = {
    "advertise-address", "authorization-mode", "client-ca-file", "enable-admission-plugins",
    "disable-admission-plugins", "etcd-cafile", "etcd-certfile", "etcd-keyfile", "etcd-servers",
    "etcd-prefix", "kubelet-client-certificate", "kubelet-client-key", "kubelet-certificate-authority",
    "kubelet-preferred-address-types", "proxy-client-cert-file", "proxy-client-key-file",
    "requestheader-allowed-names", "requestheader-client-ca-file", "requestheader-extra-headers-prefix",
    "requestheader-group-headers", "requestheader-username-headers", "requestheader-uid-headers",
    "secure-port", "service-account-issuer", "service-account-key-file",
    "service-account-signing-key-file", "service-cluster-ip-range", "service-node-port-range",
    "tls-cert-file", "tls-private-key-file", "tls-min-version", "tls-cipher-suites", "tls-sni-cert-key",
    "bind-address", "v", "vmodule", "feature-gates", "runtime-config", "authentication-config",
    "authorization-config", "authorization-webhook-config-file", "encryption-provider-config",
    "event-ttl", "audit-log-path", "audit-policy-file", "audit-log-maxage", "audit-log-maxbackup",
    "audit-log-maxsize", "audit-log-format", "audit-webhook-config-file", "oidc-issuer-url",
    "oidc-client-id", "oidc-username-claim", "oidc-groups-claim", "oidc-ca-file", "endpoint-reconciler-type",
    "apiserver-count", "max-requests-inflight", "max-mutating-requests-inflight", "request-timeout",
    "min-request-timeout", "default-not-ready-toleration-seconds", "default-unreachable-toleration-seconds",
    "storage-backend", "etcd-compaction-interval", "etcd-count-metric-poll-period", "cloud-provider",
    "external-hostname", "service-account-max-token-expiration", "api-audiences", "shutdown-delay-duration",
    "goaway-chance", "livez-grace-period", "log-flush-frequency", "logging-format", "cert-dir",
    "token-auth-file", "egress-selector-config-file", "admission-control-config-file",
    "service-account-extend-token-expiration", "kubelet-timeout", "authorization-webhook-version",
    "authentication-token-webhook-config-file", "etcd-healthcheck-timeout", "etcd-readycheck-timeout",
}
FILE_FLAGS = ("client-ca-file", "tls-cert-file", "tls-private-key-file", "etcd-cafile", "etcd-certfile",
              "etcd-keyfile", "service-account-key-file", "service-account-signing-key-file")


class FlagError(Exception):
    pass


def parse_flags(argv, bool_flags=None, value_flags=None, command="kube-apiserver"):
    """pflag-style parsing: ``--name=value``, ``--name value``, bool ``--name``; unknown flags fail."""
    bool_flags = BOOL_FLAGS if bool_flags is None else bool_flags
    value_flags = VALUE_FLAGS if value_flags is None else value_flags
    flags = {}
    args = list(argv)
    if args and args[0] == command:
        args = args[1:]  # the manifest's command starts with the binary name
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if not arg.startswith("--") or arg == "--":
            raise FlagError(f'unknown command "{arg}" for "{command}"')
        name, has_value, value = arg[2:].partition("=")
        if name in bool_flags:
            if has_value and value.lower() not in ("true", "false", "1", "0", "t", "f"):
                raise FlagError(f'invalid argument "{value}" for "--{name}" flag: strconv.ParseBool: '
                                f'parsing "{value}": invalid syntax')
            flags[name] = (value.lower() in ("true", "1", "t")) if has_value else True
        elif name in value_flags:
            if not has_value:
                if index >= len(args):
                    raise FlagError(f"flag needs an argument: --{name}")
                value = args[index]
                index += 1
            flags[name] = value
        else:
            raise FlagError(f"unknown flag: --{name}")
    return flags


def validate_flags(flags):
    problems = []
    if not flags.get("etcd-servers"):
        problems.append("--etcd-servers must be specified")
    if not flags.get("service-account-issuer"):
        problems.append("service-account-issuer is a required flag")
    if not flags.get("service-account-signing-key-file"):
        problems.append("--service-account-signing-key-file and --service-account-issuer are required flags")
    if problems:
        raise FlagError("[" + ", ".join(problems) + "]")
    try:
        port = int(flags.get("secure-port", "6443"))
    except ValueError:
        raise FlagError(f'invalid argument "{flags["secure-port"]}" for "--secure-port" flag: '
                        "strconv.ParseInt: invalid syntax") from None
    if not 0 < port < 65536:
        raise FlagError(f"[--secure-port {port} must be between 1 and 65535, inclusive. It cannot be turned "
                        "off with 0]")
    for name in FILE_FLAGS:
        path = flags.get(name)
        if path and not os.access(path, os.R_OK):
            raise FlagError(f"open {path}: no such file or directory")
    if bool(flags.get("tls-cert-file")) != bool(flags.get("tls-private-key-file")):
        raise FlagError("[--tls-cert-file and --tls-private-key-file must be specified together]")
    return port


# -- resources -----------------------------------------------------------------------------

class Resource:
    def __init__(self, group, version, name, kind, namespaced):
        self.group, self.version, self.name, self.kind, self.namespaced = group, version, name, kind, namespaced

    @property
    def api_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self):
        """How messages name it: ``secrets``, ``leases.coordination.k8s.io``."""
        return f"{self.name}.{self.group}" if self.group else self.name


RESOURCES = {}
for _group, _version, _name, _kind, _namespaced in (
        ("", "v1", "namespaces", "Namespace", False), ("", "v1", "nodes", "Node", False),
        ("", "v1", "secrets", "Secret", True), ("", "v1", "configmaps", "ConfigMap", True),
        ("", "v1", "serviceaccounts", "ServiceAccount", True), ("", "v1", "services", "Service", True),
        ("", "v1", "endpoints", "Endpoints", True), ("", "v1", "pods", "Pod", True),
        ("", "v1", "events", "Event", True),
        ("apps", "v1", "deployments", "Deployment", True), ("apps", "v1", "daemonsets", "DaemonSet", True),
        ("coordination.k8s.io", "v1", "leases", "Lease", True),
        ("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
        ("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
        ("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
        ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
        ("certificates.k8s.io", "v1", "certificatesigningrequests", "CertificateSigningRequest", False)):
    RESOURCES[(_group, _name)] = Resource(_group, _version, _name, _kind, _namespaced)
SUBRESOURCES = {("nodes", "status"), ("namespaces", "status"), ("certificatesigningrequests", "status"),
                ("certificatesigningrequests", "approval"), ("pods", "status"), ("deployments", "status"),
                ("daemonsets", "status")}
RBAC_RESOURCES = {"roles", "rolebindings", "clusterroles", "clusterrolebindings"}
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = DNS1123_LABEL + r"(\." + DNS1123_LABEL + ")*"
DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"
SUBDOMAIN_MESSAGE = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                     "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                     f"validation is '{DNS1123_SUBDOMAIN}')")
LABEL_MESSAGE = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                 "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                 f"validation is '{DNS1123_LABEL}')")
DNS1035_MESSAGE = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                   "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
                   f"regex used for validation is '{DNS1035_LABEL}')")


def name_problem(resource_name, name):
    """What the real API server says about ``name`` for this resource (None when valid): DNS subdomain
    for most, DNS label for Namespaces, DNS-1035 label for Services, a path segment for RBAC objects
    (``system:node-proxier``, capitals allowed), anything for CSRs ("we don't care what you call your
    certificate requests": kubelets of old releases named them ``node-csr-<base64>``)."""
    if resource_name == "certificatesigningrequests":
        return None
    if resource_name in RBAC_RESOURCES:
        for bad, text in ((".", "may not be '.'"), ("..", "may not be '..'")):
            if name == bad:
                return text
        for bad in ("/", "%"):
            if bad in name:
                return f"may not contain '{bad}'"
        return None
    if resource_name == "namespaces":
        limit, pattern, message = 63, DNS1123_LABEL, LABEL_MESSAGE
    elif resource_name == "services":
        limit, pattern, message = 63, DNS1035_LABEL, DNS1035_MESSAGE
    else:
        limit, pattern, message = 253, DNS1123_SUBDOMAIN, SUBDOMAIN_MESSAGE
    if len(name) > limit:
        return f"must be no more than {limit} characters"
    return None if re.fullmatch(pattern, name) else message


def storage_key(resource, namespace, name):
    if resource.namespaced:
        return f"/registry/{resource.name}/{namespace}/{name}"
    return f"/registry/{resource.name}/{name}"


def storage_prefix(resource, namespace):
    if resource.namespaced and namespace:
        return f"/registry/{resource.name}/{namespace}/"
    return f"/registry/{resource.name}/"


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text):
    return datetime.datetime.strptime(text.replace("Z", "+00:00").split(".")[0].replace("+00:00", ""),
                                      "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)


class ApiStatus(Exception):
    """An error answered as a k8s Status object."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def body(self):
        status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": self.message, "reason": self.reason, "code": self.code}
        if self.details:
            status["details"] = self.details
        return status


def not_found(resource, name):
    return ApiStatus(404, "NotFound", f'{resource.qualified} "{name}" not found',
                     {"name": name, "group": resource.group, "kind": resource.name})


def conflict(resource, name):
    return ApiStatus(409, "Conflict", f'Operation cannot be fulfilled on {resource.qualified} "{name}": the object '
                     "has been modified; please apply your changes to the latest version and try again",
                     {"name": name, "group": resource.group, "kind": resource.name})


# -- patches -------------------------------------------------------------------------------

def merge_patch(target, patch):
    """RFC 7386 JSON merge patch (strategic merge patches are applied the same way here)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target, operations):
    """RFC 6902 add/replace/remove/test (enough for the clients of the simulator)."""
    doc = json.loads(json.dumps(target))
    for op in operations:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        last = parts[-1] if parts else None
        kind = op["op"]
        if kind == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if current != op.get("value"):
                raise ApiStatus(422, "Invalid", f"the test operation on {op['path']} failed")
        elif kind in ("add", "replace"):
            if isinstance(parent, list):
                if last == "-":
                    parent.append(op["value"])
                elif kind == "add":
                    parent.insert(int(last), op["value"])
                else:
                    parent[int(last)] = op["value"]
            else:
                parent[last] = op["value"]
        elif kind == "remove":
            if isinstance(parent, list):
                del parent[int(last)]
            else:
                parent.pop(last, None)
        else:
            raise ApiStatus(422, "Invalid", f'unsupported JSON patch operation "{kind}"')
    return doc


# -- selectors -----------------------------------------------------------------------------

def _selector_terms(text):
    terms = []
    for raw in filter(None, (t.strip() for t in (text or "").split(","))):
        if "!=" in raw:
            key, value = raw.split("!=", 1)
            terms.append((key.strip(), "!=", value.strip()))
        elif "==" in raw or "=" in raw:
            key, value = re.split("==?", raw, maxsplit=1)
            terms.append((key.strip(), "=", value.strip()))
        elif raw.startswith("!"):
            terms.append((raw[1:].strip(), "!", None))
        else:
            terms.append((raw, "exists", None))
    return terms


def _matches(terms, lookup):
    for key, op, value in terms:
        present, actual = lookup(key)
        if op == "=" and (not present or actual != value):
            return False
        if op == "!=" and present and actual == value:
            return False
        if op == "exists" and not present:
            return False
        if op == "!" and present:
            return False
    return True


def selected(obj, label_selector, field_selector):
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if not _matches(_selector_terms(label_selector), lambda k: (k in labels, labels.get(k))):
        return False

    def field(path):
        node = obj
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return True, ""
            node = node[part]
        return True, str(node)
    return _matches(_selector_terms(field_selector), field)


# -- authentication / authorization ---------------------------------------------------------

class User:
    def __init__(self, name, groups):
        self.name, self.groups = name, list(groups)

    @property
    def authenticated(self):
        return self.name != "system:anonymous"


ANONYMOUS = User("system:anonymous", ["system:unauthenticated"])
TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
PUBLIC_PATHS = ("/livez", "/readyz", "/healthz", "/version")
BUILTIN_CLUSTER_ROLES = {
    "cluster-admin": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                      {"nonResourceURLs": ["*"], "verbs": ["*"]}],
}
BUILTIN_BINDINGS = [  # the bootstrap policy's binding of system:masters
    {"metadata": {"name": "cluster-admin"}, "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
     "subjects": [{"kind": "Group", "name": "system:masters"}]},
]


def _rule_allows(rule, verb, group, resource, name, path):
    verbs = rule.get("verbs") or []
    if "*" not in verbs and verb not in verbs:
        return False
    if path is not None:
        for pattern in rule.get("nonResourceURLs") or []:
            if pattern == "*" or pattern == path or (pattern.endswith("*") and path.startswith(pattern[:-1])):
                return True
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and group not in groups:
        return False
    resources = rule.get("resources") or []
    base = resource.split("/")[0]
    if "*" not in resources and resource not in resources and f"{base}/*" not in resources:
        return False
    names = rule.get("resourceNames") or []
    return not names or (name is not None and name in names)


class Request:
    """What authorization looks at."""

    def __init__(self, verb, resource=None, namespace=None, name=None, subresource=None, path=None):
        self.verb, self.resource, self.namespace, self.name = verb, resource, namespace, name
        self.subresource, self.path = subresource, path

    @property
    def resource_text(self):
        return f"{self.resource.name}/{self.subresource}" if self.subresource else self.resource.name


# -- the server ----------------------------------------------------------------------------

def log(message, level="I"):
    stamp = datetime.datetime.now().strftime("%m%d %H:%M:%S.%f")
    sys.stderr.write(f"{level}{stamp} {os.getpid():>7} apiserver.py] {message}\n")
    sys.stderr.flush()


class ApiServer:
    def __init__(self, flags, sim):
        self.flags = flags
        self.sim = sim
        self.port = validate_flags(flags)
        self.bind = flags.get("bind-address", "0.0.0.0")
        self.anonymous_auth = flags.get("anonymous-auth", True)
        self.bootstrap_tokens = flags.get("enable-bootstrap-token-auth", False)
        self.prefix = flags.get("etcd-prefix", "/registry").rstrip("/")
        self.etcd = Etcd(flags["etcd-servers"], flags.get("etcd-cafile"), flags.get("etcd-certfile"),
                         flags.get("etcd-keyfile"), timeout=2.0)
        self._etcd_ok_until = 0.0
        self._etcd_lock = threading.Lock()
        self._namespaces_ready = False
        self._rbac_cache = (0.0, None)

    # -- storage helpers ---------------------------------------------------------------------

    def _key(self, resource, namespace, name):
        return self.prefix + storage_key(resource, namespace, name)[len("/registry"):]

    def _prefix(self, resource, namespace):
        return self.prefix + storage_prefix(resource, namespace)[len("/registry"):]

    @staticmethod
    def _decode(kv):
        obj = json.loads(kv.value)
        obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
        return obj

    def etcd_healthy(self):
        if time.monotonic() < self._etcd_ok_until:
            return True
        with self._etcd_lock:
            if time.monotonic() < self._etcd_ok_until:
                return True
            try:
                self.etcd.revision()
            except EtcdError as exc:
                log(f"etcd check failed: {exc}", "E")
                return False
            self._etcd_ok_until = time.monotonic() + 1.0
            if not self._namespaces_ready:
                self._ensure_namespaces()
            return True

    def _ensure_namespaces(self):
        resource = RESOURCES[("", "namespaces")]
        for name in SYSTEM_NAMESPACES:
            obj = {"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": name, "uid": str(uuid.uuid4()), "creationTimestamp": now_rfc3339(),
                                "labels": {"kubernetes.io/metadata.name": name}},
                   "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
            self.etcd.create(self._key(resource, None, name), json.dumps(obj))
        self._namespaces_ready = True

    def read(self, resource, namespace, name):
        kv = self.etcd.get(self._key(resource, namespace, name))
        return (self._decode(kv), kv.mod_revision) if kv else (None, 0)

    # -- authentication ----------------------------------------------------------------------

    def authenticate(self, peer_cert, authorization):
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise ApiStatus(401, "Unauthorized", "Unauthorized")
            user = self._bootstrap_user(token.strip()) if self.bootstrap_tokens else None
            if user is None:
                raise ApiStatus(401, "Unauthorized", "Unauthorized")
            return user
        if peer_cert:
            name, groups = None, []
            for rdn in peer_cert.get("subject", ()):
                for key, value in rdn:
                    if key == "commonName":
                        name = value
                    elif key == "organizationName":
                        groups.append(value)
            if name:
                return User(name, groups + ["system:authenticated"])
        if not self.anonymous_auth:
            raise ApiStatus(401, "Unauthorized", "Unauthorized")
        return ANONYMOUS

    def _bootstrap_user(self, token):
        match = TOKEN_RE.match(token)
        if not match:
            return None
        token_id, secret = match.groups()
        obj, _ = self.read(RESOURCES[("", "secrets")], "kube-system", f"bootstrap-token-{token_id}")
        if not obj or obj.get("type") != "bootstrap.kubernetes.io/token":
            return None
        data = {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
        if data.get("token-id") != token_id or data.get("token-secret") != secret:
            return None
        if data.get("usage-bootstrap-authentication") != "true":
            return None
        expiration = data.get("expiration")
        if expiration:
            try:
                if parse_rfc3339(expiration) <= datetime.datetime.now(datetime.timezone.utc):
                    return None
            except ValueError:
                return None
        extra = [g for g in data.get("auth-extra-groups", "").split(",") if g]
        return User(f"system:bootstrap:{token_id}",
                    ["system:bootstrappers"] + extra + ["system:authenticated"])

    # -- authorization -----------------------------------------------------------------------

    def authorize(self, user, req):
        if self._fixed_rules(user, req) or self._rbac(user, req):
            return
        subject = f'User "{user.name}"'
        if req.path is not None:
            raise ApiStatus(403, "Forbidden", f'forbidden: {subject} cannot {req.verb} path "{req.path}"')
        res = req.resource
        scope = (f'in the namespace "{req.namespace}"' if res.namespaced and req.namespace
                 else "at the cluster scope")
        what = f'{res.qualified} "{req.name}"' if req.name else res.qualified
        raise ApiStatus(403, "Forbidden",
                        f'{what} is forbidden: {subject} cannot {req.verb} resource "{req.resource_text}" '
                        f'in API group "{res.group}" {scope}',
                        {"name": req.name or "", "group": res.group, "kind": res.name})

    @staticmethod
    def _fixed_rules(user, req):
        groups = set(user.groups)
        if "system:masters" in groups or user.name in ("system:kube-controller-manager",
                                                       "system:kube-scheduler"):
            return True
        if req.path is not None:
            if req.path in PUBLIC_PATHS or req.path.startswith(("/livez/", "/readyz/", "/healthz/")):
                return req.verb == "get"
            # system:discovery: authenticated users may read the API discovery documents
            return user.authenticated and req.verb == "get" and req.path.startswith(("/api", "/openapi"))
        res, verb, ns, name = req.resource.name, req.verb, req.namespace, req.name
        if res == "configmaps" and ns == "kube-public" and name == "cluster-info" and verb == "get":
            return True
        if res == "certificatesigningrequests" and not req.subresource and verb in ("create", "get", "list",
                                                                                   "watch"):
            if groups & {"system:nodes", "system:bootstrappers"}:
                return True
        if "system:nodes" in groups and user.name.startswith("system:node:"):
            node = user.name[len("system:node:"):]
            if res == "nodes" and verb in ("get", "list", "watch"):
                return True
            if res == "nodes" and verb in ("create", "update", "patch") and name in (node, None) and \
                    (verb == "create" or name == node):
                return True
            if res == "leases" and ns == "kube-node-lease" and verb in ("get", "create", "update", "patch") \
                    and (verb == "create" or name == node):
                return True
            if res == "configmaps" and ns == "kube-system" and verb == "get":
                return True
        if "system:bootstrappers" in groups:
            if res == "configmaps" and ns == "kube-system" and verb == "get" and \
                    name in ("kubeadm-config", "kubelet-config"):
                return True
            if res == "secrets" and ns == "kube-system" and verb == "get" and name == "kubeadm-certs":
                return True
            if res == "nodes" and verb == "get":
                return True
        return False

    def _rbac_objects(self):
        stamp, cached = self._rbac_cache
        if cached is not None and time.monotonic() - stamp < 1.0:
            return cached
        objects = {}
        for name in RBAC_RESOURCES:
            items, _ = self.etcd.list(self._prefix(RESOURCES[("rbac.authorization.k8s.io", name)], None))
            objects[name] = [json.loads(kv.value) for kv in items]
        self._rbac_cache = (time.monotonic(), objects)
        return objects

    def _rbac(self, user, req):
        """RBAC over the stored roles and bindings, plus the built-in cluster-admin role."""
        objects = self._rbac_objects()

        def subject_matches(subject):
            kind, name = subject.get("kind"), subject.get("name")
            return (kind == "User" and name == user.name) or (kind == "Group" and name in user.groups)

        def role_rules(ref, namespace):
            if ref.get("kind") == "ClusterRole":
                for role in objects["clusterroles"]:
                    if role["metadata"]["name"] == ref.get("name"):
                        return role.get("rules") or []
                return BUILTIN_CLUSTER_ROLES.get(ref.get("name"), [])
            for role in objects["roles"]:
                if role["metadata"]["name"] == ref.get("name") and role["metadata"].get("namespace") == namespace:
                    return role.get("rules") or []
            return []

        candidates = [(b, None) for b in BUILTIN_BINDINGS + objects["clusterrolebindings"]]
        if req.path is None and req.namespace:
            candidates += [(b, req.namespace) for b in objects["rolebindings"]
                           if b["metadata"].get("namespace") == req.namespace]
        group = req.resource.group if req.resource else None
        resource = req.resource_text if req.resource else None
        for binding, namespace in candidates:
            if not any(subject_matches(s) for s in binding.get("subjects") or []):
                continue
            for rule in role_rules(binding.get("roleRef") or {}, namespace):
                if _rule_allows(rule, req.verb, group, resource, req.name, req.path):
                    return True
        return False

    # -- REST ----------------------------------------------------------------------------------

    @staticmethod
    def route(path):
        """``(resource, namespace, name, subresource)`` for a REST path, or None."""
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        if parts[:2] == ["api", "v1"]:
            group, rest = "", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, rest = parts[1], parts[3:]
            resource = next((r for (g, _), r in RESOURCES.items() if g == group), None)
            if resource is None or resource.version != parts[2]:
                return None
        else:
            return None
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces" and (group, rest[2]) in RESOURCES:
            namespace, rest = rest[1], rest[2:]
        if not rest or (group, rest[0]) not in RESOURCES:
            return None
        resource = RESOURCES[(group, rest[0])]
        if resource.namespaced is False and namespace:
            return None
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if len(rest) > 3 or (sub and (resource.name, sub) not in SUBRESOURCES):
            return None
        return resource, namespace, name, sub

    def _check_namespace(self, resource, namespace):
        if resource.namespaced and namespace and namespace not in SYSTEM_NAMESPACES:
            ns_res = RESOURCES[("", "namespaces")]
            if self.read(ns_res, None, namespace)[0] is None:
                raise ApiStatus(404, "NotFound", f'namespaces "{namespace}" not found',
                                {"name": namespace, "kind": "namespaces"})

    def _prepare(self, resource, namespace, obj, user, old=None):
        if not isinstance(obj, dict):
            raise ApiStatus(400, "BadRequest", "the body of the request was in an unknown format")
        meta = obj.setdefault("metadata", {})
        obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
        if resource.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise ApiStatus(400, "BadRequest", "the namespace of the provided object does not match the "
                                "namespace sent on the request")
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        meta.pop("resourceVersion", None)
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
        else:
            meta["uid"] = old["metadata"].get("uid")
            meta["creationTimestamp"] = old["metadata"].get("creationTimestamp")
        if resource.name == "secrets" and "stringData" in obj:
            data = obj.setdefault("data", {}) or {}
            for key, value in (obj.pop("stringData") or {}).items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            obj["data"] = data
        if resource.name == "secrets":
            obj.setdefault("type", "Opaque")
        if resource.name == "certificatesigningrequests":
            spec = obj.setdefault("spec", {})
            if old is None:
                spec["username"] = user.name
                spec["groups"] = user.groups
                obj["status"] = {}
            else:
                spec.update({k: old["spec"].get(k) for k in ("username", "groups", "uid") if k in old["spec"]})
        return obj

    def _validate_name(self, resource, name):
        if not name:
            raise ApiStatus(422, "Invalid", f"{resource.kind} \"\" is invalid: metadata.name: Required value: "
                            "name or generateName is required")
        problem = name_problem(resource.name, name)
        if problem:
            raise ApiStatus(422, "Invalid", f'{resource.kind} "{name}" is invalid: metadata.name: Invalid value: '
                            f'"{name}": {problem}')

    def get(self, resource, namespace, name):
        obj, _ = self.read(resource, namespace, name)
        if obj is None:
            raise not_found(resource, name)
        return obj

    def list(self, resource, namespace, query):
        if resource.namespaced and namespace:
            self._check_namespace(resource, namespace)
        items, revision = self.etcd.list(self._prefix(resource, namespace))
        label = (query.get("labelSelector") or [""])[0]
        field = (query.get("fieldSelector") or [""])[0]
        objects = [self._decode(kv) for kv in items]
        return {"kind": f"{resource.kind}List", "apiVersion": resource.api_version,
                "metadata": {"resourceVersion": str(revision)},
                "items": [o for o in objects if selected(o, label, field)]}

    def create(self, resource, namespace, obj, user):
        self._check_namespace(resource, namespace)
        obj = self._prepare(resource, namespace, obj, user)
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        self._validate_name(resource, meta.get("name"))
        revision = self.etcd.create(self._key(resource, namespace, meta["name"]), json.dumps(obj))
        if revision is None:
            raise ApiStatus(409, "AlreadyExists", f'{resource.qualified} "{meta["name"]}" already exists',
                            {"name": meta["name"], "group": resource.group, "kind": resource.name})
        self._after_write(resource)
        meta["resourceVersion"] = str(revision)
        return obj

    def update(self, resource, namespace, name, obj, user, sub=None):
        if not isinstance(obj, dict):
            raise ApiStatus(400, "BadRequest", "the body of the request was in an unknown format")
        body_name = (obj.get("metadata") or {}).get("name")
        if body_name != name:
            raise ApiStatus(400, "BadRequest", f"the name of the object ({body_name}) does not match the name "
                            f"on the URL ({name})")
        wanted = (obj.get("metadata") or {}).get("resourceVersion")
        old, revision = self.read(resource, namespace, name)
        if old is None:
            raise not_found(resource, name)
        if wanted and str(wanted) != str(revision):
            raise conflict(resource, name)
        if sub:  # a subresource replaces the status only
            new = json.loads(json.dumps(old))
            new["status"] = obj.get("status") or {}
        else:
            new = obj
            if resource.name == "certificatesigningrequests":
                new["status"] = old.get("status") or {}
        new = self._prepare(resource, namespace, new, user, old=old)
        new_revision = self.etcd.update(self._key(resource, namespace, name), json.dumps(new), revision)
        if new_revision is None:
            if self.read(resource, namespace, name)[0] is None:
                raise not_found(resource, name)
            raise conflict(resource, name)
        self._after_write(resource)
        new["metadata"]["resourceVersion"] = str(new_revision)
        return new

    def patch(self, resource, namespace, name, body, content_type, user, sub=None):
        try:
            patch = json.loads(body or b"null")
        except ValueError:
            raise ApiStatus(400, "BadRequest", "the body of the request was in an unknown format") from None
        for _ in range(10):
            old, revision = self.read(resource, namespace, name)
            if old is None:
                raise not_found(resource, name)
            if content_type.startswith("application/json-patch+json"):
                new = json_patch(old, patch if isinstance(patch, list) else [])
            elif content_type.startswith(("application/merge-patch+json", "application/strategic-merge-patch+json")):
                new = merge_patch(old, patch)
            else:
                raise ApiStatus(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - '
                                f'accepted media types include: application/json-patch+json, '
                                f'application/merge-patch+json, application/strategic-merge-patch+json')
            wanted = (new.get("metadata") or {}).get("resourceVersion")
            if wanted and str(wanted) != str(revision):
                raise conflict(resource, name)
            new.setdefault("metadata", {})["resourceVersion"] = str(revision)
            try:
                return self.update(resource, namespace, name, new, user, sub)
            except ApiStatus as exc:
                if exc.code != 409 or wanted:
                    raise
        raise conflict(resource, name)

    def delete(self, resource, namespace, name, body):
        wanted = None
        if body:
            try:
                options = json.loads(body)
                wanted = ((options or {}).get("preconditions") or {}).get("resourceVersion")
            except ValueError:
                pass
        old, revision = self.read(resource, namespace, name)
        if old is None:
            raise not_found(resource, name)
        if wanted and str(wanted) != str(revision):
            raise conflict(resource, name)
        if not self.etcd.delete(self._key(resource, namespace, name), mod_revision=revision):
            raise conflict(resource, name)
        self._after_write(resource)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "group": resource.group, "kind": resource.name,
                            "uid": old["metadata"].get("uid")}}

    def _after_write(self, resource):
        if resource.name in RBAC_RESOURCES:
            self._rbac_cache = (0.0, None)

    # -- non-resource endpoints ------------------------------------------------------------------

    def version_info(self):
        version = self.sim.kubernetes_version
        return {"major": str(version.major), "minor": str(version.minor), "gitVersion": str(version),
                "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23.0", "compiler": "gc",
                "platform": "linux/amd64"}

    def health(self, path, query):
        """(status, text) of /livez, /readyz, /healthz; ?verbose lists the checks."""
        checks = [("ping", True), ("log", True)]
        if path != "/livez":
            checks.append(("etcd", self.etcd_healthy()))
        if path == "/readyz":
            checks.append(("informer-sync", True))
            checks.append(("shutdown", True))
        failed = [name for name, ok in checks if not ok]
        kind = path.strip("/")
        if "verbose" in query or failed:
            lines = [f"[+]{n} ok" if ok else f"[-]{n} failed: reason withheld" for n, ok in checks]
            lines.append(f"{kind} check failed" if failed else f"{kind} check passed")
            return (500 if failed else 200), "\n".join(lines) + "\n"
        return 200, "ok"

    def discovery(self, path):
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                    "serverAddress": f"{self.flags.get('advertise-address', '')}:{self.port}"}]}
        if path == "/apis":
            groups = sorted({(r.group, r.version) for r in RESOURCES.values() if r.group})
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                 "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}} for g, v in groups]}
        match = re.match(r"^/(?:api/(v1)|apis/([^/]+)/([^/]+))$", path)
        if match:
            group = match.group(2) or ""
            version = match.group(1) or match.group(3)
            resources = [r for r in RESOURCES.values() if r.group == group and r.version == version]
            if resources:
                return {"kind": "APIResourceList", "apiVersion": "v1",
                        "groupVersion": resources[0].api_version,
                        "resources": [{"name": r.name, "singularName": r.kind.lower(), "namespaced": r.namespaced,
                                       "kind": r.kind, "verbs": ["create", "delete", "get", "list", "patch",
                                                                 "update"]} for r in resources]}
        return None


VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lab-sim-apiserver"
    sys_version = ""
    api = None  # set on the subclass

    def setup(self):
        self.request.settimeout(30)
        try:
            self.request.do_handshake()
        except (ssl.SSLError, OSError):
            self._linger_and_close()
            raise
        super().setup()

    def _linger_and_close(self):
        """After a failed handshake, drain what the client already sent before closing: closing with
        unread data makes the kernel send a RST that can destroy the TLS alert before the client reads it."""
        raw = self.request
        try:
            raw.settimeout(1.0)
            socket.socket.shutdown(raw, socket.SHUT_WR)
            while socket.socket.recv(raw, 65536):
                pass
        except OSError:
            pass
        raw.close()

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass

    def _send(self, code, payload, content_type="application/json"):
        data = payload if isinstance(payload, bytes) else (
            payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self):
        api = self.api
        url = urllib.parse.urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        body = self._body()
        try:
            user = api.authenticate(self.request.getpeercert(), self.headers.get("Authorization"))
            verb = VERBS.get(self.command, self.command.lower())
            route = api.route(path)
            if route is None:
                api.authorize(user, Request(verb, path=path))
                if path in ("/livez", "/readyz", "/healthz") or path.startswith(("/livez/", "/readyz/",
                                                                                "/healthz/")):
                    code, text = api.health("/" + path.split("/")[1], query)
                    return self._send(code, text, "text/plain; charset=utf-8")
                if path == "/version":
                    return self._send(200, api.version_info())
                doc = api.discovery(path) if self.command == "GET" else None
                if doc is None:
                    raise ApiStatus(404, "NotFound", "the server could not find the requested resource")
                return self._send(200, doc)
            resource, namespace, name, sub = route
            if name is None and verb == "get":
                verb = "watch" if query.get("watch", [""])[0] in ("true", "1") else "list"
            if name is None and verb in ("update", "patch", "delete"):
                verb = "deletecollection" if verb == "delete" else verb
            api.authorize(user, Request(verb, resource, namespace, name, sub))
            if not api.etcd_healthy():
                raise ApiStatus(503, "ServiceUnavailable", "etcdserver: request timed out")
            if verb == "watch":
                raise ApiStatus(405, "MethodNotAllowed", "watch is not supported by the lab simulator")
            if verb == "get":
                return self._send(200, api.get(resource, namespace, name))
            if verb == "list":
                return self._send(200, api.list(resource, namespace, query))
            if verb == "create" and name is None:
                return self._send(201, api.create(resource, namespace, self._json(body), user))
            if verb == "update" and name:
                return self._send(200, api.update(resource, namespace, name, self._json(body), user, sub))
            if verb == "patch" and name:
                return self._send(200, api.patch(resource, namespace, name, body,
                                                 self.headers.get("Content-Type", ""), user, sub))
            if verb == "delete" and name and not sub:
                return self._send(200, api.delete(resource, namespace, name, body))
            raise ApiStatus(405, "MethodNotAllowed", "the server does not allow this method on the requested "
                            "resource")
        except ApiStatus as exc:
            return self._send(exc.code, exc.body())
        except EtcdError as exc:
            log(f"etcd error: {exc}", "E")
            api._etcd_ok_until = 0.0  # pylint: disable=protected-access
            return self._send(500, ApiStatus(500, "InternalError", f"Internal error occurred: {exc}").body())

    @staticmethod
    def _json(body):
        try:
            return json.loads(body or b"null")
        except ValueError:
            raise ApiStatus(400, "BadRequest", "the body of the request was in an unknown format") from None

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class TLSServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, context):
        self.context = context
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        # Headers and body leave in two writes: without NODELAY, Nagle + delayed ACK add 40 ms each.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # The handshake happens in the request thread (Handler.setup), so a slow client blocks nobody.
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request, client_address):
        pass  # handshake failures and dropped connections are normal for an API server


def tls_context(flags):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    cert, key = flags.get("tls-cert-file"), flags.get("tls-private-key-file")
    if not cert:
        raise FlagError("serving without --tls-cert-file is not simulated (the real one self-signs)")
    ctx.load_cert_chain(cert, key)
    if flags.get("client-ca-file"):
        ctx.load_verify_locations(flags["client-ca-file"])
        ctx.verify_mode = ssl.CERT_OPTIONAL  # a client without a certificate is anonymous or uses a token
    return ctx


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        flags = parse_flags(argv)
        if flags.get("version"):
            print(f"Kubernetes {sim_config.load().kubernetes_version}")
            return 0
        sim = sim_config.load()
        api = ApiServer(flags, sim)
        context = tls_context(flags)
        handler = type("BoundHandler", (Handler,), {"api": api})
        server = TLSServer((api.bind, api.port), handler, context)
    except FlagError as exc:
        sys.stderr.write(f"Error: {exc}\n")
        return 1
    except OSError as exc:
        if getattr(exc, "errno", None) == 98:
            sys.stderr.write(f"E0000 run.go] \"command failed\" err=\"failed to create listener: failed to "
                             f"listen on {flags.get('bind-address', '0.0.0.0')}:{flags.get('secure-port', 6443)}: "
                             f"listen tcp {flags.get('bind-address', '0.0.0.0')}:{flags.get('secure-port', 6443)}: "
                             "bind: address already in use\"\n")
        else:
            sys.stderr.write(f"Error: {exc}\n")
        return 1
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    log(f"Serving securely on {api.bind}:{api.port} ({sim.kubernetes_version})")
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
