# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kube-vip's ``manifest pod|daemonset|rbac`` output, rebuilt in Python for a chosen kube-vip version.

``render(options)`` takes kube-vip's command-line flags in snake_case (``leader_election`` for
``--leaderElection``) and returns the exact text that version of kube-vip prints to stdout,
trailing blank line included. The rules by version (which env entries exist, their order and
defaults, image pull policy, capabilities, creationTimestamp, DaemonSet status) are encoded here;
the YAML layout comes from ``_yaml_emit`` (go-yaml v2, what kube-vip marshals with).

Bad input raises ``KubeVipOptionError`` (a ``ValueError``) with a sentence that says what is wrong.
Standard library only: it runs on managed nodes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.vipadm.kubeadm.plugins.module_utils._yaml_emit import dump

NEWEST_VERSION = "v1.2.3"
OLDEST_VERSION = "v0.4.0"
DEFAULT_VERSION = NEWEST_VERSION
ADMIN_KUBECONFIG = "/etc/kubernetes/admin.conf"
SUPER_ADMIN_KUBECONFIG = "/etc/kubernetes/super-admin.conf"
DEFAULT_IMAGE_REPOSITORY = "ghcr.io/kube-vip/kube-vip"
KINDS = ("pod", "daemonset", "rbac")
DNS_MODES = ("first", "ipv4", "ipv6", "dual")
LB_FORWARDING_METHODS = ("local", "masquerade", "nat", "tunnel", "direct")

# Every option, the kube-vip flag it stands for (used in messages), and its default when unset.
# Boolean flags default to False. Lease timings have no fixed default: it depends on the version.
OPTIONS = {
    "kind": ("manifest <kind>", "pod"),
    "version": ("version", DEFAULT_VERSION),
    "address": ("--address", None),
    "vip": ("--vip", None),
    "interface": ("--interface", None),
    "lo_interface_global_scope": ("--loInterfaceGlobalScope", False),
    "services_interface": ("--serviceInterface", None),
    "cidr": ("--cidr", None),
    "vip_subnet": ("--vipSubnet", None),
    "port": ("--port", 6443),
    "dns_mode": ("--dnsMode", "first"),
    "controlplane": ("--controlplane", False),
    "namespace": ("--namespace", "kube-system"),
    "ddns": ("--ddns", False),
    "autodetectcp": ("--autodetectcp", False),
    "services": ("--services", False),
    "services_lease_name": ("--servicesLeaseName", "plndr-svcs-lock"),
    "services_election": ("--servicesElection", False),
    "lb_class_only": ("--lbClassOnly", False),
    "only_allow_traffic_service_ports": ("--onlyAllowTrafficServicePorts", False),
    "leader_election": ("--leaderElection", False),
    "lease_name": ("--leaseName", "plndr-cp-lock"),
    "lease_duration": ("--leaseDuration", None),
    "renew_deadline": ("--leaseRenewDuration", None),
    "retry_period": ("--leaseRetry", None),
    "enable_node_labeling": ("--enableNodeLabeling", False),
    "provider_config": ("--provider-config", None),
    "arp": ("--arp", False),
    "bgp": ("--bgp", False),
    "bgp_router_id": ("--bgpRouterID", None),
    "local_as": ("--localAS", 65000),
    "peer_address": ("--peerAddress", None),
    "peer_pass": ("--peerPass", None),
    "peer_as": ("--peerAS", 65000),
    "source_if": ("--sourceIF", None),
    "source_ip": ("--sourceIP", None),
    "bgp_peers": ("--bgppeers", None),
    "enable_load_balancer": ("--enableLoadBalancer", False),
    "lb_port": ("--lbPort", 6443),
    "lb_forwarding_method": ("--lbForwardingMethod", "local"),
    "prometheus_http_server": ("--prometheusHTTPServer", ":2112"),
    "enable_endpoint_slices": ("--enableEndpointSlices", False),
    "enable_endpoints": ("--enableEndpoints", False),
    "disable_service_updates": ("--disableServiceUpdates", False),
    "mirror_dest_interface": ("--mirrorDestInterface", None),
    "health_check_port": ("--healthCheckPort", 0),
    "preserve_vip_on_leadership_loss": ("--preserveVipOnLeadershipLoss", False),
    "k8s_config_path": ("--k8sConfigPath", ADMIN_KUBECONFIG),
    "in_cluster": ("--inCluster", False),
    "taint": ("--taint", False),
    "image": ("--image", None),
}

# Flags that exist (or are emitted) only in a range of versions: (first version, first version
# without it). kube-vip rejects an unknown flag, so setting one outside its range is an error.
_OPTION_VERSIONS = {
    "lo_interface_global_scope": ((0, 8, 4), None),
    "cidr": (None, (0, 9, 0)),
    "vip_subnet": ((0, 5, 6), None),
    "dns_mode": ((0, 7, 0), None),
    "autodetectcp": ((0, 7, 0), None),
    "services_election": ((0, 5, 0), None),
    "lb_class_only": ((0, 5, 5), None),
    "only_allow_traffic_service_ports": ((0, 6, 0), None),
    "services_lease_name": ((0, 6, 3), None),
    "lease_name": ((0, 6, 1), None),
    "enable_node_labeling": ((0, 6, 3), None),
    "provider_config": (None, (0, 9, 0)),
    "lb_forwarding_method": ((0, 4, 1), None),
    "prometheus_http_server": ((0, 5, 0), None),
    "enable_endpoint_slices": ((0, 7, 0), (1, 0, 0)),
    "enable_endpoints": ((1, 0, 0), None),
    "disable_service_updates": ((0, 7, 0), None),
    "mirror_dest_interface": ((0, 8, 0), None),
    "health_check_port": ((0, 8, 10), None),
    "preserve_vip_on_leadership_loss": ((1, 0, 4), None),
    "k8s_config_path": ((0, 7, 0), None),
}

# The Makefile VERSION (hence the image tag) lagged behind the git tag in these releases.
_BUILT_VERSION = {(0, 5, 11): "v0.5.10", (0, 6, 1): "v0.6.0"}

_VERSION_RE = re.compile(r"^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
_K8S_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_IMAGE_REPOSITORY_RE = re.compile(r"^[a-z0-9_./-]{2,255}$")
_IMAGE_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_GO_BOOLS = ("1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False")


class KubeVipOptionError(ValueError):
    """An option that kube-vip would reject, or that would give a kube-vip that cannot work."""


def _fail(message):
    raise KubeVipOptionError(message)


def parse_version(text):
    """``"v0.8.9"`` -> ``(0, 8, 9)``, within the versions whose manifest format vipadm knows."""
    match = _VERSION_RE.match(str(text)) if text is not None else None
    if not match:
        _fail("version %r is not a kube-vip release version of the form vX.Y.Z (for example %s)."
              % (text, NEWEST_VERSION))
    version = tuple(int(part) for part in match.groups())
    if version < parse_version_unchecked(OLDEST_VERSION):
        _fail("kube-vip %s is older than %s, the oldest version whose manifest vipadm can render; "
              "choose %s or newer." % (text, OLDEST_VERSION, OLDEST_VERSION))
    if version > parse_version_unchecked(NEWEST_VERSION):
        _fail("kube-vip %s is newer than %s, the newest version whose manifest format vipadm knows; "
              "choose %s or older, or update vipadm." % (text, NEWEST_VERSION, NEWEST_VERSION))
    return version


def parse_version_unchecked(text):
    return tuple(int(part) for part in _VERSION_RE.match(text).groups())


def _version_text(version):
    return "v%d.%d.%d" % version


def _ip(value, what):
    try:
        return ipaddress.ip_address(str(value).strip())
    except ValueError:
        _fail("%s %r is not an IPv4 or IPv6 address." % (what, value))


def _address_list(value, what):
    """A comma-separated list of IP addresses (dual stack); returns the parsed addresses."""
    items = str(value).split(",")
    return [_ip(item, what) for item in items]


def _check_port(value, what, allow_zero=False):
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 65535:
        _fail("%s %r is not a port number between %d and 65535." % (what, value, low))


def _check_interface(value, what):
    # Linux dev_valid_name(): 1 to 15 bytes, not "." or "..", no "/", ":" or whitespace.
    text = str(value)
    if (not text or len(text.encode("utf-8")) > 15 or text in (".", "..")
            or re.search(r"[/:\s]", text)):
        _fail("%s %r is not a valid Linux interface name (1 to 15 characters, no '/', ':' or "
              "spaces)." % (what, value))


def _check_as(value, what):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4294967295:
        _fail("%s %r is not a BGP AS number between 1 and 4294967295." % (what, value))


def _check_k8s_name(value, what):
    if not _K8S_NAME_RE.match(str(value)):
        _fail("%s %r is not a valid Kubernetes name (lowercase letters, digits, '-' and '.')."
              % (what, value))


def _check_absolute_path(value, what):
    text = str(value)
    if not text.startswith("/") or re.search(r"\s", text):
        _fail("%s %r must be an absolute path without spaces." % (what, value))


def _parse_peer_text(text, version):
    """Check one peer of kube-vip's ``--bgppeers`` form: address:AS[:password[:multihop[:port]]]."""
    where = "BGP peer %r" % text
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            _fail("%s opens an IPv6 address with '[' but never closes it with ']'." % where)
        address, rest = text[1:end], text[end + 1:]
        if not rest.startswith(":"):
            _fail("%s must continue with ':AS' after the bracketed address." % where)
        fields = [address] + rest[1:].split(":")
        if _ip(address, "The address of %s" % where).version != 6:
            _fail("%s: only IPv6 addresses go in brackets." % where)
    else:
        fields = text.split(":")
        if len(fields) > 2 and re.match(r"^[0-9a-fA-F]{0,4}$", fields[0]) and "::" in text:
            _fail("%s: write an IPv6 peer address in brackets, like [2001:db8::1]:65000." % where)
        if len(fields) > 1:
            ip = _ip(fields[0], "The address of %s" % where)
            if ip.version == 6:
                _fail("%s: write an IPv6 peer address in brackets, like [2001:db8::1]:65000." % where)
    if len(fields) < 2 or not fields[0]:
        _fail("%s is not of the form address:AS[:password[:multihop]]." % where)
    suffix = ""
    if version >= (0, 8, 10) and "/" in fields[-1]:
        fields[-1], suffix = fields[-1].split("/", 1)
    if not fields[1].isdigit():
        _fail("%s: the AS number %r is not a number." % (where, fields[1]))
    _check_as(int(fields[1]), "The AS of %s" % where)
    max_fields = 5 if version >= (0, 8, 10) else 4
    if len(fields) > max_fields:
        _fail("%s has %d ':'-separated fields; kube-vip %s reads at most %d "
              "(address:AS:password:multihop%s). A password must not contain ':' or ','."
              % (where, len(fields), _version_text(version), max_fields,
                 ":port" if max_fields == 5 else ""))
    if len(fields) >= 4:
        multihop = fields[3]
        if multihop == "" and version < (1, 2, 0):
            _fail("%s: kube-vip before v1.2.0 cannot read an empty multihop field; write "
                  "'false' (for example 192.168.0.10:65000::false)." % where)
        if multihop != "" and multihop not in _GO_BOOLS:
            _fail("%s: multihop %r is not true or false." % (where, multihop))
    if len(fields) == 5 and fields[4] != "":
        if not fields[4].isdigit():
            _fail("%s: the port %r is not a number." % (where, fields[4]))
        _check_port(int(fields[4]), "The port of %s" % where)
    if suffix and not re.match(r"^(mpbgp_(nexthop|ipv4|ipv6)=[^;,]*;?)+$", suffix):
        _fail("%s: the part after '/' must be mpbgp_nexthop=..;mpbgp_ipv4=..;mpbgp_ipv6=.." % where)


_PEER_KEYS = ("address", "as", "password", "multihop", "port")


def _peer_text_from_mapping(peer, version):
    unknown = sorted(set(peer) - set(_PEER_KEYS))
    if unknown:
        _fail("BGP peer %r has unknown keys %s; the keys are %s."
              % (peer.get("address"), ", ".join(unknown), ", ".join(_PEER_KEYS)))
    if peer.get("address") in (None, ""):
        _fail("A BGP peer has no address; each peer needs address and as.")
    ip = _ip(peer["address"], "The address of BGP peer")
    if peer.get("as") is None:
        _fail("BGP peer %s has no AS number (key 'as')." % ip)
    try:
        as_number = int(peer["as"])
    except (TypeError, ValueError):
        _fail("BGP peer %s: the AS number %r is not a number." % (ip, peer["as"]))
    _check_as(as_number, "The AS of BGP peer %s" % ip)
    password = "" if peer.get("password") is None else str(peer["password"])
    if re.search(r"[:,]", password):
        _fail("The password of BGP peer %s contains ':' or ','; kube-vip's peer list cannot carry "
              "those characters." % ip)
    multihop = peer.get("multihop", False)
    if not isinstance(multihop, bool):
        _fail("BGP peer %s: multihop %r must be true or false." % (ip, multihop))
    address = "[%s]" % ip if ip.version == 6 else str(ip)
    text = "%s:%d:%s:%s" % (address, as_number, password, "true" if multihop else "false")
    port = peer.get("port")
    if port is not None and int(port) != 179:
        if version < (0, 8, 10):
            _fail("BGP peer %s: a peer port needs kube-vip v0.8.10 or newer." % ip)
        _check_port(int(port), "The port of BGP peer %s" % ip)
        text += ":%d" % int(port)
    return text


def format_bgp_peers(peers, version):
    """The ``bgp_peers`` env value from a list of peer mappings, a list of strings or one string."""
    if peers is None or peers == "" or peers == []:
        return ""
    if isinstance(peers, str):
        items = peers.split(",")
    elif isinstance(peers, (list, tuple)):
        items = list(peers)
    else:
        _fail("bgp_peers must be a list of peers or kube-vip's comma-separated peer string.")
    texts = []
    for item in items:
        if isinstance(item, dict):
            texts.append(_peer_text_from_mapping(item, version))
        elif isinstance(item, str):
            for text in item.split(","):
                _parse_peer_text(text.strip(), version)
                texts.append(text.strip())
        else:
            _fail("BGP peer %r is neither a mapping {address, as, password, multihop} nor a "
                  "string address:AS:password:multihop." % (item,))
    return ",".join(texts)


def bgp_peer_secrets(peers):
    """The passwords inside ``peers`` (any accepted form), so callers can hide them from logs."""
    secrets = []
    if isinstance(peers, str):
        peers = peers.split(",")
    for item in peers or []:
        if isinstance(item, dict):
            if item.get("password"):
                secrets.append(str(item["password"]))
        elif isinstance(item, str):
            for text in item.split(","):
                body = text.strip()
                if body.startswith("[") and "]" in body:
                    body = "x" + body[body.index("]") + 1:]
                fields = body.split(":")
                if len(fields) >= 3 and fields[2]:
                    secrets.append(fields[2])
    return secrets


def image_reference(image, tag):
    """kube-vip >= v1.0.1 ``--image``: go-containerregistry's name of the tag, ``tag`` if untagged."""
    text = str(image)
    if "@" in text:
        _fail("image %r is a digest reference; give a repository with an optional tag." % text)
    base, image_tag = text, ""
    parts = text.split(":")
    if len(parts) > 1 and "/" not in parts[-1]:
        base, image_tag = ":".join(parts[:-1]), parts[-1]
    image_tag = image_tag or tag
    if not _IMAGE_TAG_RE.match(image_tag):
        _fail("image %r has an invalid tag %r." % (text, image_tag))
    registry, repository = "", base
    first, _sep, remainder = base.partition("/")
    if remainder and ("." in first or ":" in first):
        registry, repository = first, remainder
    if not _IMAGE_REPOSITORY_RE.match(repository):
        _fail("image %r: the repository %r must be lowercase letters, digits and '._-/'."
              % (text, repository))
    if registry in ("", "docker.io"):
        registry = "index.docker.io"
        if "/" not in repository:
            repository = "library/" + repository
    return "%s/%s:%s" % (registry, repository, image_tag)


def _resolve(options):
    """Options with defaults filled in; unknown names are an error."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        _fail("Unknown kube-vip option(s): %s." % ", ".join(unknown))
    resolved = {}
    for name, (_flag, default) in OPTIONS.items():
        value = options.get(name)
        resolved[name] = default if value is None else value
    return resolved


def _is_set(options, name):
    return options[name] not in (None, False) and options[name] != OPTIONS[name][1]


def _check_options(opts, version, require_usable):
    kind = opts["kind"]
    if kind not in KINDS:
        _fail("kind %r is not one of %s." % (kind, ", ".join(KINDS)))
    for name, (since, until) in _OPTION_VERSIONS.items():
        if not _is_set(opts, name):
            continue
        flag = OPTIONS[name][0]
        if since and version < since:
            _fail("%s (%s) needs kube-vip %s or newer; %s does not have it."
                  % (name, flag, _version_text(since), _version_text(version)))
        if until and version >= until:
            _fail("%s (%s) was removed in kube-vip %s; %s does not have it."
                  % (name, flag, _version_text(until), _version_text(version)))
    if kind == "rbac":
        if version < (0, 9, 0):
            _fail("kube-vip %s prints no usable rbac manifest; 'manifest rbac' works from v0.9.0."
                  % _version_text(version))
        return
    if opts["taint"] and kind != "daemonset":
        _fail("taint (--taint) exists only for kind daemonset.")
    if opts["address"]:
        if len(_address_list(opts["address"], "address")) > 2:
            _fail("address %r lists more than two addresses (one IPv4 and one IPv6 at most)."
                  % opts["address"])
    if opts["vip"]:
        _ip(opts["vip"], "vip")
    _check_port(opts["port"], "port")
    _check_port(opts["lb_port"], "lb_port")
    _check_port(opts["health_check_port"], "health_check_port", allow_zero=True)
    for name in ("interface", "services_interface", "mirror_dest_interface", "source_if"):
        if opts[name]:
            _check_interface(opts[name], name)
    if opts["dns_mode"] not in DNS_MODES:
        _fail("dns_mode %r is not one of %s." % (opts["dns_mode"], ", ".join(DNS_MODES)))
    if opts["lb_forwarding_method"] not in LB_FORWARDING_METHODS:
        _fail("lb_forwarding_method %r is not one of %s."
              % (opts["lb_forwarding_method"], ", ".join(LB_FORWARDING_METHODS)))
    for name in ("cidr", "vip_subnet"):
        if opts[name] and not re.match(r"^[0-9]{1,3}(,[0-9]{1,3})?$", str(opts[name])):
            _fail("%s %r must be a prefix length such as 32 (or 32,128 for two addresses)."
                  % (name, opts[name]))
    _check_k8s_name(opts["namespace"], "namespace")
    _check_k8s_name(opts["lease_name"], "lease_name")
    _check_k8s_name(opts["services_lease_name"], "services_lease_name")
    _check_absolute_path(opts["k8s_config_path"], "k8s_config_path")
    if opts["provider_config"]:
        _check_absolute_path(opts["provider_config"], "provider_config")
    if re.search(r"\s", str(opts["prometheus_http_server"])):
        _fail("prometheus_http_server %r must be host:port without spaces."
              % opts["prometheus_http_server"])
    _check_as(opts["local_as"], "local_as")
    _check_as(opts["peer_as"], "peer_as")
    if opts["bgp_router_id"] and _ip(opts["bgp_router_id"], "bgp_router_id").version != 4:
        _fail("bgp_router_id %r must be written as an IPv4 address." % opts["bgp_router_id"])
    if opts["peer_address"]:
        _ip(opts["peer_address"], "peer_address")
    if opts["source_ip"]:
        _ip(opts["source_ip"], "source_ip")
    if opts["peer_pass"] and re.search(r"\s", str(opts["peer_pass"])):
        _fail("peer_pass must not contain spaces.")
    format_bgp_peers(opts["bgp_peers"], version)
    _check_leases(opts, version)
    if require_usable:
        _check_usable(opts)


def lease_defaults(version):
    """(lease duration, renew deadline, retry period) in seconds: 15/10/2 from v1.1.0, 5/3/1 before."""
    return (15, 10, 2) if version >= (1, 1, 0) else (5, 3, 1)


def _check_leases(opts, version):
    defaults = lease_defaults(version)
    values = []
    for name, default in zip(("lease_duration", "renew_deadline", "retry_period"), defaults):
        value = default if opts[name] is None else opts[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            _fail("%s %r must be a whole number of seconds, 1 or more." % (name, value))
        values.append(value)
    opts["lease_duration"], opts["renew_deadline"], opts["retry_period"] = values


def _check_usable(opts):
    """Choices kube-vip prints a manifest for but with which it cannot hold a VIP."""
    if opts["kind"] == "rbac":
        return
    if opts["address"] and opts["vip"]:
        _fail("Give the virtual IP either as address or as vip (its older spelling), not both; "
              "kube-vip would silently ignore vip.")
    duration, deadline, retry = opts["lease_duration"], opts["renew_deadline"], opts["retry_period"]
    # client-go leaderelection refuses these at start-up; kube-vip would crash-loop.
    if not duration > deadline:
        _fail("lease_duration (%d) must be greater than renew_deadline (%d)." % (duration, deadline))
    if not deadline > 1.2 * retry:
        _fail("renew_deadline (%d) must be greater than 1.2 x retry_period (%d)." % (deadline, retry))
    if opts["arp"] == opts["bgp"]:
        _fail("Choose exactly one of arp and bgp: %s. ARP announces the VIP on a layer-2 "
              "segment, BGP advertises it to routers." % ("both are set" if opts["arp"] else "neither is set"))
    if not (opts["controlplane"] or opts["services"]):
        _fail("Enable controlplane (the API server VIP), services (LoadBalancer Services) or both; "
              "with neither kube-vip has nothing to do.")
    if opts["controlplane"] and not (opts["address"] or opts["vip"]):
        _fail("controlplane needs the virtual IP: set address (or vip).")
    if opts["bgp"]:
        if not opts["bgp_router_id"]:
            _fail("BGP needs bgp_router_id (this node's router ID, usually its own IPv4 address).")
        if not (opts["bgp_peers"] or opts["peer_address"]):
            _fail("BGP needs at least one peer: set bgp_peers (or peer_address).")


def _auto_prefix_lengths(address, sort_and_dedup):
    lengths = ["128" if ip.version == 6 else "32" for ip in _address_list(address, "address")]
    if sort_and_dedup:
        # v1.0.1+ sorts, deduplicates and reverses the list (string order: "32" after "128").
        lengths = sorted(set(lengths), reverse=True)
    return ",".join(lengths)


def _bool_text(value):
    return "true" if value else "false"


def _env(opts, version):
    """The container's env list, in the order the generator of ``version`` appends entries."""
    env = []

    def add(name, value=""):
        env.append({"name": name, "value": value} if value != "" else {"name": name})

    def flag(name, env_name):
        if opts[name]:
            add(env_name, "true")

    add("vip_arp", _bool_text(opts["arp"]))
    add("port", str(opts["port"]))
    if version >= (0, 8, 0):
        env.append({"name": "vip_nodename", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}})
    if opts["interface"]:
        add("vip_interface", opts["interface"])
        if version >= (0, 8, 4) and opts["lo_interface_global_scope"]:
            add("vip_interfaceloglobal", "true")
    if opts["services_interface"]:
        add("vip_servicesinterface", opts["services_interface"])
    address = opts["address"] or ""
    if version <= (0, 8, 0):
        add("vip_cidr", str(opts["cidr"] or "32"))
    elif version < (0, 9, 0):
        cidr = str(opts["cidr"] or "") or (_auto_prefix_lengths(address, False) if address else "")
        if cidr:
            add("vip_cidr", cidr)
    subnet = str(opts["vip_subnet"] or "")
    if version >= (0, 9, 0) and not subnet and address:
        subnet = _auto_prefix_lengths(address, version >= (1, 0, 1))
    if subnet:
        add("vip_subnet", subnet)
    if version >= (0, 7, 0):
        add("dns_mode", opts["dns_mode"])
    if version >= (1, 0, 3):
        # ParseEnvironment() derives DHCP mode from the DNS mode during generation.
        add("dhcp_mode", opts["dns_mode"] if opts["dns_mode"] != "first" else "ipv4")
    if opts["controlplane"]:
        add("cp_enable", "true")
        add("cp_namespace", opts["namespace"])
        if version < (0, 7, 0):
            add("vip_ddns", _bool_text(opts["ddns"]))
        else:
            flag("ddns", "vip_ddns")
            flag("autodetectcp", "cp_detect")
    if opts["services"]:
        add("svc_enable", "true")
        if version >= (0, 6, 3):
            add("svc_leasename", opts["services_lease_name"])
        flag("services_election", "svc_election")
        flag("lb_class_only", "lb_class_only")
        flag("only_allow_traffic_service_ports", "enable_service_security")
    if opts["leader_election"]:
        add("vip_leaderelection", "true")
        if version >= (0, 6, 1):
            add("vip_leasename", opts["lease_name"])
        add("vip_leaseduration", str(opts["lease_duration"]))
        add("vip_renewdeadline", str(opts["renew_deadline"]))
        add("vip_retryperiod", str(opts["retry_period"]))
    flag("enable_node_labeling", "enable_node_labeling")
    if opts["provider_config"]:
        add("provider_config", opts["provider_config"])
    if opts["bgp"]:
        add("bgp_enable", "true")
        add("bgp_routerid", opts["bgp_router_id"] or "")
        add("bgp_as", str(opts["local_as"]))
        add("bgp_peeraddress", opts["peer_address"] or "")
        add("bgp_peerpass", opts["peer_pass"] or "")
        add("bgp_peeras", str(opts["peer_as"]))
        # Spelled bgp_source_if/bgp_source_ip up to v0.4.x (checked on the v0.4.1 and v0.5.12 binaries).
        source = "bgp_source%s" if version >= (0, 5, 0) else "bgp_source_%s"
        if opts["source_if"]:
            add(source % "if", opts["source_if"])
        if opts["source_ip"]:
            add(source % "ip", opts["source_ip"])
        peers = format_bgp_peers(opts["bgp_peers"], version)
        if peers:
            add("bgp_peers", peers)
    if opts["enable_load_balancer"]:
        add("lb_enable", "true")
        add("lb_port", str(opts["lb_port"]))
        if version >= (0, 4, 1):
            add("lb_fwdmethod", opts["lb_forwarding_method"])
    if address:
        add("address", address)
    else:
        add("vip_address", opts["vip"] or "")
    prometheus = opts["prometheus_http_server"]
    if version >= (0, 8, 1) or (version >= (0, 5, 0) and prometheus):
        add("prometheus_server", prometheus)
    flag("enable_endpoint_slices", "enable_endpointslices")
    flag("enable_endpoints", "enable_endpoints")
    flag("disable_service_updates", "disable_service_updates")
    if opts["mirror_dest_interface"]:
        add("mirror_dest_interface", opts["mirror_dest_interface"])
    if opts["health_check_port"]:
        add("health_check_port", str(opts["health_check_port"]))
    flag("preserve_vip_on_leadership_loss", "vip_preserve_on_leadership_loss")
    return env


def _security_context(opts, version):
    # The forwarding method decides, whether or not the load balancer is enabled.
    if version >= (0, 8, 0) and opts["lb_forwarding_method"] == "masquerade":
        return {"privileged": True}
    capabilities = {"add": ["NET_ADMIN", "NET_RAW"] + (["SYS_TIME"] if version < (0, 4, 1) else [])}
    if version >= (0, 8, 10):
        capabilities["drop"] = ["ALL"]
    return {"capabilities": capabilities}


def _manifest_image(image, version):
    # Before v1.0.1 (no --image) the default is ghcr.io/kube-vip/kube-vip:<built>, which image_reference
    # returns unchanged; from v1.0.1 kube-vip names the image as image_reference does.
    return image_reference(image or DEFAULT_IMAGE_REPOSITORY, _BUILT_VERSION.get(version, _version_text(version)))


def manifest_image(version_text, image=None):
    """The image reference the kube-vip manifest of that version names: what a node must have to run it.

    ``image`` (kube_vip_image) untagged gets the tag of the release; empty means ghcr.io/kube-vip/kube-vip.
    """
    return _manifest_image(image, parse_version(version_text))


def _pod_spec(opts, version):
    container = {
        "args": ["manager"],
        "env": _env(opts, version),
        "image": _manifest_image(opts["image"], version),
        "imagePullPolicy": "IfNotPresent" if version >= (0, 8, 0) else "Always",
        "name": "kube-vip",
        "resources": {},
        "securityContext": _security_context(opts, version),
    }
    spec = {"containers": [container], "hostNetwork": True}
    mounts, volumes = [], []
    if opts["in_cluster"]:
        spec["serviceAccountName"] = "kube-vip"
    else:
        # The Pod always sees the kubeconfig at admin.conf; only the host file changes (v0.7.0+).
        host_path = opts["k8s_config_path"] if version >= (0, 7, 0) else ADMIN_KUBECONFIG
        mounts.append({"mountPath": ADMIN_KUBECONFIG, "name": "kubeconfig"})
        volumes.append({"hostPath": {"path": host_path}, "name": "kubeconfig"})
        spec["hostAliases"] = [{"hostnames": ["kubernetes"], "ip": "127.0.0.1"}]
    if opts["provider_config"]:
        mounts.append({"mountPath": "/etc/cloud-sa", "name": "cloud-sa-volume", "readOnly": True})
        volumes.append({"name": "cloud-sa-volume", "secret": {"secretName": "metal-cloud-config"}})
    if mounts:
        container["volumeMounts"] = mounts
    if volumes:
        spec["volumes"] = volumes
    if opts["taint"]:
        spec["tolerations"] = [
            {"effect": "NoSchedule", "operator": "Exists"},
            {"effect": "NoExecute", "operator": "Exists"},
        ]
        spec["affinity"] = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {"matchExpressions": [{"key": "node-role.kubernetes.io/master", "operator": "Exists"}]},
                {"matchExpressions": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]},
            ]}}}
    return spec


def _metadata(name, namespace, version, labels=None):
    metadata = {"name": name, "namespace": namespace}
    if version <= (1, 0, 0):
        # apimachinery < v0.34 marshals the zero creationTimestamp as null.
        metadata["creationTimestamp"] = None
    if labels:
        metadata["labels"] = labels
    return metadata


def _pod(opts, version):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _metadata("kube-vip", "kube-system", version),
        "spec": _pod_spec(opts, version),
        "status": {},
    }


def _daemonset(opts, version):
    built = _BUILT_VERSION.get(version, _version_text(version))
    if version >= (0, 4, 2):
        selector = {"app.kubernetes.io/name": "kube-vip-ds"}
        labels = {"app.kubernetes.io/name": "kube-vip-ds", "app.kubernetes.io/version": built}
        metadata = _metadata("kube-vip-ds", "kube-system", version, labels)
    else:
        selector = labels = {"name": "kube-vip-ds"}
        metadata = _metadata("kube-vip-ds", "kube-system", version)
    template_metadata = {"labels": dict(labels)}
    if version <= (1, 0, 0):
        template_metadata["creationTimestamp"] = None
    daemonset = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": metadata,
        "spec": {
            "selector": {"matchLabels": selector},
            "template": {"metadata": template_metadata, "spec": _pod_spec(opts, version)},
            "updateStrategy": {},
        },
    }
    if version <= (0, 8, 1):
        daemonset["status"] = {
            "currentNumberScheduled": 0,
            "desiredNumberScheduled": 0,
            "numberMisscheduled": 0,
            "numberReady": 0,
        }
    return daemonset


def _rbac_documents(version):
    services_verbs = ["list", "get", "watch", "endoints" if version < (0, 9, 1) else "update"]
    rules = [
        ("", ["services/status"], ["update"]),
        ("", ["services", "endpoints"], services_verbs),
        ("", ["nodes"], ["list", "get", "watch", "update", "patch"]),
        ("coordination.k8s.io", ["leases"], ["list", "get", "watch", "update", "create"]),
        ("discovery.k8s.io", ["endpointslices"], ["list", "get", "watch", "update"]),
        ("", ["pods"], ["list"]),
    ]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "kube-vip", "namespace": "kube-system"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "system:kube-vip-role"},
         "rules": [{"apiGroups": [group], "resources": resources, "verbs": verbs}
                   for group, resources, verbs in rules]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "system:kube-vip-binding"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "system:kube-vip-role"},
         "subjects": [{"kind": "ServiceAccount", "name": "kube-vip", "namespace": "kube-system"}]},
    ]


def check(options, require_usable=True):
    """Validate ``options``; returns them resolved (defaults filled in) with the parsed version."""
    opts = _resolve(options)
    version = parse_version(opts["version"])
    _check_options(opts, version, require_usable)
    return opts, version


def control_plane_lease(options):
    """``{"namespace", "name"}`` of the Lease whose holder carries the control plane VIP, or None.

    Only kube-vip in ARP mode with leader election has one; versions before v0.6.1 always name it
    plndr-cp-lock (no ``vip_leasename``).
    """
    opts, version = check(options, require_usable=False)
    if not (opts["controlplane"] and opts["arp"] and opts["leader_election"]):
        return None
    name = opts["lease_name"] if version >= (0, 6, 1) else OPTIONS["lease_name"][1]
    return {"namespace": opts["namespace"], "name": name}


def render(options, require_usable=True):
    """The exact stdout of ``kube-vip manifest <kind>`` for ``options`` at ``options['version']``.

    ``require_usable`` also rejects flag sets kube-vip prints happily but cannot run with (no mode,
    BGP without router ID or peers, control plane without an address). Leave it on outside tests.
    """
    opts, version = check(options, require_usable)
    if opts["kind"] == "rbac":
        return "".join("---\n" + dump(document) + "\n" for document in _rbac_documents(version))
    document = _pod(opts, version) if opts["kind"] == "pod" else _daemonset(opts, version)
    return dump(document) + "\n"  # fmt.Println adds a newline after the YAML's own
