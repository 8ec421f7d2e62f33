"""kubeadm's configuration API (``kubeadm.k8s.io/v1beta3`` and ``v1beta4``): strict decoding,
defaults, validation, and the ClusterConfiguration kubeadm stores in ``kube-system/kubeadm-config``.

Internally a configuration is a plain dict in the v1beta4 shape (``extraArgs`` as lists of
``{name, value}``, ``timeouts``); v1beta3 input is converted on decoding.
"""

import copy
import ipaddress
import re

import yaml

from lab.sim.kubeadm.errors import KubeadmError
from lab.sim.kubeadm.flags import parse_go_duration

GROUP = "kubeadm.k8s.io"
V1BETA3 = f"{GROUP}/v1beta3"
V1BETA4 = f"{GROUP}/v1beta4"
SCHEME = "k8s.io/kubernetes/cmd/kubeadm/app/apis/kubeadm/scheme/scheme.go:31"

DEFAULT_SERVICE_SUBNET = "10.96.0.0/12"
DEFAULT_DNS_DOMAIN = "cluster.local"
DEFAULT_CERT_DIR = "/etc/kubernetes/pki"
DEFAULT_IMAGE_REPOSITORY = "registry.k8s.io"
DEFAULT_BIND_PORT = 6443
DEFAULT_CRI_SOCKET = "unix:///var/run/containerd/containerd.sock"
DEFAULT_TOKEN_GROUP = "system:bootstrappers:kubeadm:default-node-token"
DEFAULT_TOKEN_USAGES = ["signing", "authentication"]
DEFAULT_TOKEN_TTL = 24 * 3600.0
CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}

# v1beta4 Timeouts defaults (seconds, unscaled).
DEFAULT_TIMEOUTS = {
    "controlPlaneComponentHealthCheck": 240.0,
    "kubeletHealthCheck": 240.0,
    "kubernetesAPICall": 60.0,
    "etcdAPICall": 120.0,
    "tlsBootstrap": 300.0,
    "discovery": 300.0,
    "upgradeManifests": 300.0,
}

STR, INT, BOOL, DUR, ANY = "string", "int", "bool", "duration", "any"
STRS = [STR]
MAP = {"*": STR}

_TOKEN = {"token": STR, "description": STR, "ttl": DUR, "expires": STR, "usages": STRS, "groups": STRS}
_TAINT = {"key": STR, "value": STR, "effect": STR, "timeAdded": STR}
_VOLUME = {"name": STR, "hostPath": STR, "mountPath": STR, "readOnly": BOOL, "pathType": STR}
_ARG = {"name": STR, "value": STR}
_ENV = {"name": STR, "value": STR, "valueFrom": ANY}
_ENDPOINT = {"advertiseAddress": STR, "bindPort": INT}
_PATCHES = {"directory": STR}
_TIMEOUTS = {name: DUR for name in DEFAULT_TIMEOUTS}


def _node_registration(v4):
    fields = {
        "name": STR, "criSocket": STR, "taints": [_TAINT], "ignorePreflightErrors": STRS,
        "imagePullPolicy": STR, "kubeletExtraArgs": [_ARG] if v4 else MAP,
    }
    if v4:
        fields["imagePullSerial"] = BOOL
    return fields


def _component(v4, timeout=False):
    fields = {"extraArgs": [_ARG] if v4 else MAP, "extraVolumes": [_VOLUME]}
    if v4:
        fields["extraEnvs"] = [_ENV]
    if timeout and not v4:
        fields["timeoutForControlPlane"] = DUR
    return fields


def _schemas(v4):
    meta = {"apiVersion": STR, "kind": STR}
    init = {
        **meta,
        "bootstrapTokens": [_TOKEN], "nodeRegistration": _node_registration(v4),
        "localAPIEndpoint": _ENDPOINT, "certificateKey": STR, "skipPhases": STRS, "patches": _PATCHES,
    }
    local_etcd = {
        "imageRepository": STR, "imageTag": STR, "dataDir": STR, "extraArgs": [_ARG] if v4 else MAP,
        "serverCertSANs": STRS, "peerCertSANs": STRS,
    }
    if v4:
        local_etcd["extraEnvs"] = [_ENV]
    external_etcd = {"endpoints": STRS, "caFile": STR, "certFile": STR, "keyFile": STR}
    cluster = {
        **meta,
        "etcd": {"local": local_etcd, "external": external_etcd},
        "networking": {"serviceSubnet": STR, "podSubnet": STR, "dnsDomain": STR},
        "kubernetesVersion": STR, "controlPlaneEndpoint": STR,
        "apiServer": {**_component(v4, timeout=True), "certSANs": STRS},
        "controllerManager": _component(v4), "scheduler": _component(v4),
        "dns": {"imageRepository": STR, "imageTag": STR, **({"disabled": BOOL} if v4 else {})},
        "certificatesDir": STR, "imageRepository": STR, "featureGates": {"*": BOOL},
        "clusterName": STR,
    }
    discovery = {
        "bootstrapToken": {
            "token": STR, "apiServerEndpoint": STR, "caCertHashes": STRS, "unsafeSkipCAVerification": BOOL,
        },
        "file": {"kubeConfigPath": STR}, "tlsBootstrapToken": STR,
    }
    join = {
        **meta,
        "nodeRegistration": _node_registration(v4), "caCertPath": STR, "discovery": discovery,
        "controlPlane": {"localAPIEndpoint": _ENDPOINT, "certificateKey": STR},
        "skipPhases": STRS, "patches": _PATCHES,
    }
    schemas = {"InitConfiguration": init, "ClusterConfiguration": cluster, "JoinConfiguration": join}
    if v4:
        for kind in ("InitConfiguration", "JoinConfiguration"):
            schemas[kind]["dryRun"] = BOOL
            schemas[kind]["timeouts"] = _TIMEOUTS
        cluster["proxy"] = {"disabled": BOOL}
        cluster["encryptionAlgorithm"] = STR
        cluster["certificateValidityPeriod"] = DUR
        cluster["caCertificateValidityPeriod"] = DUR
        schemas["ResetConfiguration"] = {
            **meta, "certificatesDir": STR, "cleanupTmpDir": BOOL, "criSocket": STR, "dryRun": BOOL,
            "force": BOOL, "ignorePreflightErrors": STRS, "skipPhases": STRS, "unmountFlags": STRS,
        }
        schemas["UpgradeConfiguration"] = {**meta, "apply": ANY, "diff": ANY, "node": ANY, "plan": ANY,
                                           "timeouts": _TIMEOUTS}
    else:
        discovery["timeout"] = DUR
    return schemas


SCHEMAS = {V1BETA3: _schemas(False), V1BETA4: _schemas(True)}
# Component configs kubeadm accepts next to its own documents; their fields are not checked here.
COMPONENT_KINDS = {
    ("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration"),
    ("kubeproxy.config.k8s.io/v1alpha1", "KubeProxyConfiguration"),
}


def supported_api_versions(version):
    """The kubeadm API versions a kubeadm of ``version`` decodes."""
    versions = []
    if version < (1, 37):
        versions.append(V1BETA3)
    if version >= (1, 31):
        versions.append(V1BETA4)
    return versions


def storage_api_version(version):
    return V1BETA4 if version >= (1, 31) else V1BETA3


def _gvk(api_version, kind):
    group, _, ver = api_version.rpartition("/")
    return f'schema.GroupVersionKind{{Group:"{group}", Version:"{ver}", Kind:"{kind}"}}'


def _json_kind(value):
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "string"


def _strict_check(value, schema, path, unknown):
    """Collect unknown field paths and type errors of ``value`` against ``schema``."""
    if schema == ANY or value is None:
        return
    if isinstance(schema, list):
        if not isinstance(value, list):
            raise TypeError(f"json: cannot unmarshal {_json_kind(value)} into Go struct field {path} of type list")
        for index, item in enumerate(value):
            _strict_check(item, schema[0], f"{path}[{index}]", unknown)
        return
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise TypeError(f"json: cannot unmarshal {_json_kind(value)} into Go struct field {path} of type object")
        for key, item in value.items():
            sub = schema.get(key, schema.get("*"))
            child = f"{path}.{key}" if path else str(key)
            if sub is None:
                unknown.append(child)
                continue
            _strict_check(item, sub, child, unknown)
        return
    expected = {STR: str, INT: int, BOOL: bool, DUR: str}[schema]
    if schema == INT and isinstance(value, bool) or not isinstance(value, expected):
        if schema == STR and isinstance(value, (int, float)) and not isinstance(value, bool):
            raise TypeError(f"json: cannot unmarshal number into Go struct field {path} of type string")
        raise TypeError(f"json: cannot unmarshal {_json_kind(value)} into Go struct field {path} of type {schema}")
    if schema == DUR:
        try:
            parse_go_duration(value)
        except ValueError as exc:
            raise TypeError(f"{path}: {exc}") from None


def split_documents(text, version):
    """Decode a multi-document kubeadm config file strictly. Returns ({kind: doc}, warnings)."""
    try:
        documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        raise KubeadmError(f"error converting YAML to JSON: {exc}") from None
    supported = supported_api_versions(version)
    found, warnings = {}, []
    for doc in documents:
        if not isinstance(doc, dict):
            raise KubeadmError("couldn't interpret the configuration file: not a YAML object")
        api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
        if not api_version or not kind:
            raise KubeadmError(
                f"invalid configuration for GroupVersionKind {api_version}, Kind={kind}: "
                "kind and apiVersion is mandatory information that must be specified"
            )
        if (api_version, kind) in COMPONENT_KINDS:
            found[kind] = doc
            continue
        if not api_version.startswith(GROUP + "/"):
            warnings.append(f"[config] WARNING: Ignored configuration document with GroupVersionKind "
                            f"{api_version}, Kind={kind}")
            continue
        if kind in found:
            raise KubeadmError(f"invalid configuration: kind {kind!r} is specified twice in YAML file")
        schemas = SCHEMAS.get(api_version) if api_version in supported else None
        if schemas is None or kind not in schemas:
            raise KubeadmError(
                f'no kind "{kind}" is registered for version "{api_version}" in scheme "{SCHEME}"'
            )
        unknown = []
        try:
            _strict_check(doc, schemas[kind], "", unknown)
        except TypeError as exc:
            raise KubeadmError(
                f"error unmarshaling configuration {_gvk(api_version, kind)}: {exc}"
            ) from None
        if unknown:
            fields = ", ".join(f'unknown field "{name}"' for name in unknown)
            raise KubeadmError(
                f"error unmarshaling configuration {_gvk(api_version, kind)}: strict decoding error: {fields}"
            )
        if api_version == V1BETA3 and version >= (1, 31):
            warnings.append(
                f'your configuration file uses a deprecated API spec: "{api_version}" (kind: "{kind}"). '
                "Please use 'kubeadm config migrate --old-config old-config-file --new-config "
                "new-config-file', which will write the new, similar spec using a newer API version."
            )
        found[kind] = _to_internal(doc)
    return found, warnings


def _args_list(value):
    if isinstance(value, dict):
        return [{"name": k, "value": str(v)} for k, v in sorted(value.items())]
    return list(value or [])


def _to_internal(doc):
    """Convert a decoded v1beta3 or v1beta4 document to the internal (v1beta4-shaped) dict."""
    doc = copy.deepcopy(doc)
    if doc["apiVersion"] == V1BETA3:
        for holder in (doc.get("apiServer"), doc.get("controllerManager"), doc.get("scheduler"),
                       (doc.get("etcd") or {}).get("local")):
            if isinstance(holder, dict) and "extraArgs" in holder:
                holder["extraArgs"] = _args_list(holder["extraArgs"])
        registration = doc.get("nodeRegistration")
        if isinstance(registration, dict) and "kubeletExtraArgs" in registration:
            registration["kubeletExtraArgs"] = _args_list(registration["kubeletExtraArgs"])
        timeouts = {}
        api_server = doc.get("apiServer") or {}
        if "timeoutForControlPlane" in api_server:
            timeouts["controlPlaneComponentHealthCheck"] = api_server.pop("timeoutForControlPlane")
        discovery = doc.get("discovery") or {}
        if "timeout" in discovery:
            timeouts["discovery"] = discovery.pop("timeout")
        if timeouts:
            doc["timeouts"] = timeouts
    return doc


# ---------------------------------------------------------------------------------------------
# Validation (kubeadm's field.ErrorList messages)

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
TOKEN_RE = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
CERT_KEY_RE = re.compile(r"^[0-9a-f]{64}$")
_CA_HASH_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def _quote(value):
    return f'"{value}"' if isinstance(value, str) else str(value)


def invalid(path, value, message):
    return f"{path}: Invalid value: {_quote(value)}: {message}"


def required(path, message=""):
    return f"{path}: Required value" + (f": {message}" if message else "")


def aggregate(errors):
    """kubeadm's aggregated field errors: one message alone, several in brackets."""
    if not errors:
        return None
    if len(errors) == 1:
        return KubeadmError(errors[0])
    return KubeadmError("[" + ", ".join(errors) + "]")


def _is_ip(text):
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _valid_altname(name):
    if _is_ip(name):
        return True
    candidate = name[2:] if name.startswith("*.") else name
    return bool(_DNS1123_SUBDOMAIN.match(candidate))


def split_host_port(endpoint, default_port):
    """``host[:port]`` of controlPlaneEndpoint / apiServerEndpoint (IPv6 in brackets)."""
    if endpoint.startswith("["):
        host, _, rest = endpoint[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif endpoint.count(":") == 1:
        host, port = endpoint.split(":")
    else:
        host, port = endpoint, ""
    if port == "":
        return host, default_port
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"port must be a valid number between 1 and 65535, inclusive")
    return host, int(port)


def validate_cluster(cluster):
    errors = []
    net = cluster["networking"]
    for field in ("serviceSubnet", "podSubnet"):
        value = net.get(field)
        if value:
            for subnet in value.split(","):
                try:
                    ipaddress.ip_network(subnet.strip(), strict=False)
                except ValueError:
                    errors.append(invalid(f"networking.{field}", subnet, "couldn't parse subnet"))
    if not _DNS1123_SUBDOMAIN.match(net["dnsDomain"]):
        errors.append(invalid("networking.dnsDomain", net["dnsDomain"], _DNS1123_MSG))
    for index, san in enumerate(cluster["apiServer"].get("certSANs") or []):
        if not _valid_altname(san):
            errors.append(invalid(
                f"apiServer.certSANs[{index}]", san,
                "altname is not a valid IP address, DNS label or a DNS label with subdomain wildcards",
            ))
    endpoint = cluster.get("controlPlaneEndpoint") or ""
    if endpoint:
        try:
            split_host_port(endpoint, DEFAULT_BIND_PORT)
        except ValueError as exc:
            errors.append(invalid("controlPlaneEndpoint", endpoint, str(exc)))
    if cluster.get("encryptionAlgorithm") not in (None, "RSA-2048", "RSA-3072", "RSA-4096",
                                                  "ECDSA-P256", "ECDSA-P384"):
        errors.append(f"encryptionAlgorithm: Unsupported value: {_quote(cluster['encryptionAlgorithm'])}: "
                      'supported values: "ECDSA-P256", "RSA-2048", "RSA-3072", "RSA-4096"')
    return errors


def _validate_registration(registration, path="nodeRegistration"):
    errors = []
    name = registration.get("name", "")
    if not name:
        errors.append(required(f"{path}.name"))
    elif not _DNS1123_SUBDOMAIN.match(name) or len(name) > 253:
        errors.append(invalid(f"{path}.name", name, _DNS1123_MSG))
    socket_path = registration.get("criSocket", "")
    if socket_path and not socket_path.startswith("unix://") and not socket_path.startswith("/"):
        errors.append(invalid(f"{path}.criSocket", socket_path,
                              "path is not absolute and does not contain a supported URL scheme"))
    return errors


def _validate_endpoint(endpoint, path):
    errors = []
    address = endpoint.get("advertiseAddress", "")
    if address and not _is_ip(address):
        errors.append(invalid(f"{path}.advertiseAddress", address, "ip address is not valid"))
    port = endpoint.get("bindPort", DEFAULT_BIND_PORT)
    if not 0 < port < 65536:
        errors.append(invalid(f"{path}.bindPort", port, "port number is not valid"))
    return errors


def validate_init(init, cluster):
    errors = []
    for index, token in enumerate(init["bootstrapTokens"]):
        if not TOKEN_RE.match(token["token"]):
            errors.append(invalid(f"bootstrapTokens[{index}].token", token["token"],
                                  "the bootstrap token is invalid"))
        for usage in token.get("usages", []):
            if usage not in ("signing", "authentication"):
                errors.append(invalid(f"bootstrapTokens[{index}].usages", usage,
                                      "usages must be one of [authentication signing]"))
    errors += _validate_registration(init["nodeRegistration"])
    errors += _validate_endpoint(init["localAPIEndpoint"], "localAPIEndpoint")
    key = init.get("certificateKey") or ""
    if key and not CERT_KEY_RE.match(key):
        errors.append(invalid("certificateKey", key, "certificate key size must be 32 bytes"))
    errors += validate_cluster(cluster)
    return errors


def validate_join(join):
    errors = []
    discovery = join["discovery"]
    token_discovery = discovery.get("bootstrapToken")
    file_discovery = discovery.get("file")
    if not token_discovery and not file_discovery:
        errors.append(invalid("discovery", "", "bootstrapToken or file must be set"))
    if token_discovery and file_discovery:
        errors.append(invalid("discovery", "", "bootstrapToken and file cannot both be set"))
    if token_discovery:
        token = token_discovery.get("token", "")
        if not TOKEN_RE.match(token):
            errors.append(invalid("discovery.bootstrapToken.token", token, "the bootstrap token is invalid"))
        if not token_discovery.get("apiServerEndpoint"):
            errors.append(required("discovery.bootstrapToken.apiServerEndpoint",
                                   "the API server endpoint must be set"))
        hashes = token_discovery.get("caCertHashes") or []
        if not hashes and not token_discovery.get("unsafeSkipCAVerification"):
            errors.append(invalid(
                "discovery.bootstrapToken", "",
                "using token-based discovery without caCertHashes can be unsafe. Set "
                "unsafeSkipCAVerification as true in your kubeadm config file or pass "
                "--discovery-token-unsafe-skip-ca-verification flag to continue",
            ))
        for ca_hash in hashes:
            if not _CA_HASH_RE.match(ca_hash):
                errors.append(invalid("discovery.bootstrapToken.caCertHashes", ca_hash,
                                      'public key pin must be in the form "sha256:<hex>"'))
    tls_token = discovery.get("tlsBootstrapToken", "")
    if token_discovery is not None and tls_token and not TOKEN_RE.match(tls_token):
        errors.append(invalid("discovery.tlsBootstrapToken", tls_token, "the bootstrap token is invalid"))
    errors += _validate_registration(join["nodeRegistration"])
    control_plane = join.get("controlPlane")
    if control_plane:
        errors += _validate_endpoint(control_plane["localAPIEndpoint"], "controlPlane.localAPIEndpoint")
        key = control_plane.get("certificateKey") or ""
        if key and not CERT_KEY_RE.match(key):
            errors.append(invalid("controlPlane.certificateKey", key, "certificate key size must be 32 bytes"))
    return errors


# ---------------------------------------------------------------------------------------------
# Defaults


def default_cluster(cluster=None):
    cluster = copy.deepcopy(cluster or {})
    cluster.setdefault("kubernetesVersion", "")
    cluster.setdefault("controlPlaneEndpoint", "")
    networking = cluster.setdefault("networking", {})
    networking.setdefault("serviceSubnet", DEFAULT_SERVICE_SUBNET)
    networking.setdefault("dnsDomain", DEFAULT_DNS_DOMAIN)
    networking.setdefault("podSubnet", "")
    cluster.setdefault("certificatesDir", DEFAULT_CERT_DIR)
    cluster.setdefault("imageRepository", DEFAULT_IMAGE_REPOSITORY)
    cluster.setdefault("clusterName", "kubernetes")
    cluster.setdefault("encryptionAlgorithm", "RSA-2048")
    for component in ("apiServer", "controllerManager", "scheduler"):
        section = cluster.setdefault(component, {}) or {}
        cluster[component] = section
        section.setdefault("extraArgs", [])
    cluster["apiServer"].setdefault("certSANs", [])
    etcd = cluster.setdefault("etcd", {})
    if not etcd.get("external"):
        local = etcd.setdefault("local", {}) or {}
        etcd["local"] = local
        local.setdefault("dataDir", "/var/lib/etcd")
        local.setdefault("extraArgs", [])
        local.setdefault("serverCertSANs", [])
        local.setdefault("peerCertSANs", [])
    cluster.setdefault("featureGates", {})
    cluster.setdefault("dns", {})
    cluster.setdefault("proxy", {})
    return cluster


def _default_registration(registration, hostname, taints):
    registration = registration if registration is not None else {}
    if not registration.get("name"):
        registration["name"] = hostname
    registration.setdefault("criSocket", DEFAULT_CRI_SOCKET)
    if "taints" not in registration and taints is not None:
        registration["taints"] = taints
    registration.setdefault("kubeletExtraArgs", [])
    registration.setdefault("ignorePreflightErrors", [])
    registration.setdefault("imagePullPolicy", "IfNotPresent")
    return registration


def _default_timeouts(doc):
    timeouts = {name: value for name, value in DEFAULT_TIMEOUTS.items()}
    for name, value in (doc.get("timeouts") or {}).items():
        timeouts[name] = parse_go_duration(value) if isinstance(value, str) else value
    doc["timeouts"] = timeouts


def default_init(init, hostname, advertise_address, new_token):
    init = copy.deepcopy(init or {})
    tokens = init.get("bootstrapTokens")
    if not tokens:
        tokens = [{"token": new_token()}]
    for token in tokens:
        token.setdefault("token", "")
        token["ttl"] = parse_go_duration(token["ttl"]) if isinstance(token.get("ttl"), str) \
            else token.get("ttl", DEFAULT_TOKEN_TTL)
        token.setdefault("usages", list(DEFAULT_TOKEN_USAGES))
        token.setdefault("groups", [DEFAULT_TOKEN_GROUP])
    init["bootstrapTokens"] = tokens
    init["nodeRegistration"] = _default_registration(init.get("nodeRegistration"), hostname,
                                                     [dict(CONTROL_PLANE_TAINT)])
    endpoint = init.setdefault("localAPIEndpoint", {})
    if not endpoint.get("advertiseAddress"):
        endpoint["advertiseAddress"] = advertise_address()
    endpoint.setdefault("bindPort", DEFAULT_BIND_PORT)
    init.setdefault("certificateKey", "")
    init.setdefault("skipPhases", [])
    _default_timeouts(init)
    return init


def default_join(join, hostname, advertise_address):
    join = copy.deepcopy(join or {})
    discovery = join.setdefault("discovery", {})
    token_discovery = discovery.get("bootstrapToken")
    if token_discovery is not None:
        token_discovery.setdefault("caCertHashes", [])
        token_discovery.setdefault("unsafeSkipCAVerification", False)
        if not discovery.get("tlsBootstrapToken"):
            discovery["tlsBootstrapToken"] = token_discovery.get("token", "")
    control_plane = join.get("controlPlane")
    join["nodeRegistration"] = _default_registration(
        join.get("nodeRegistration"), hostname, [dict(CONTROL_PLANE_TAINT)] if control_plane else None
    )
    join["nodeRegistration"].setdefault("taints", [])
    if control_plane is not None:
        endpoint = control_plane.setdefault("localAPIEndpoint", {})
        if not endpoint.get("advertiseAddress"):
            endpoint["advertiseAddress"] = advertise_address()
        endpoint.setdefault("bindPort", DEFAULT_BIND_PORT)
        control_plane.setdefault("certificateKey", "")
    join.setdefault("caCertPath", f"{DEFAULT_CERT_DIR}/ca.crt")
    join.setdefault("skipPhases", [])
    _default_timeouts(join)
    return join


# ---------------------------------------------------------------------------------------------
# Encoding the ClusterConfiguration stored in kube-system/kubeadm-config


def _args_map(items):
    return {item["name"]: item["value"] for item in items or []}


def encode_cluster(cluster, version):
    """YAML of the ClusterConfiguration as kubeadm of ``version`` uploads it."""
    api_version = storage_api_version(version)
    doc = {"apiVersion": api_version, "kind": "ClusterConfiguration"}
    body = copy.deepcopy(cluster)
    body.pop("apiVersion", None)
    body.pop("kind", None)
    if api_version == V1BETA3:
        for key in ("encryptionAlgorithm", "proxy", "certificateValidityPeriod", "caCertificateValidityPeriod"):
            body.pop(key, None)
        for component in ("apiServer", "controllerManager", "scheduler"):
            section = body.get(component) or {}
            section["extraArgs"] = _args_map(section.get("extraArgs"))
            section.pop("extraEnvs", None)
        body["apiServer"]["timeoutForControlPlane"] = "4m0s"
        local = (body.get("etcd") or {}).get("local")
        if local:
            local["extraArgs"] = _args_map(local.get("extraArgs"))
            local.pop("extraEnvs", None)
        (body.get("dns") or {}).pop("disabled", None)
    for component in ("apiServer", "controllerManager", "scheduler"):
        section = body.get(component) or {}
        if not section.get("extraArgs"):
            section.pop("extraArgs", None)
    if not body.get("featureGates"):
        body.pop("featureGates", None)
    doc.update(body)
    return yaml.safe_dump(doc, default_flow_style=False, sort_keys=True)


def decode_stored_cluster(text, version):
    """The ClusterConfiguration read back from the kubeadm-config ConfigMap."""
    found, _warnings = split_documents(text, version)
    if "ClusterConfiguration" not in found:
        raise KubeadmError("unable to decode the ClusterConfiguration from the kubeadm-config ConfigMap")
    return default_cluster(found["ClusterConfiguration"])
