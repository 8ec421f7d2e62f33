# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IPv4, IPv6 and dual stack: pure checks of the cluster's address families before anything changes.

A cluster has a primary family: the family of its first Service subnet (kubeadm's default, 10.96.0.0/12, is
IPv4). kube-apiserver refuses to start when its advertise address is of another family ("service IP family
... must match public address family"), and the ``kubernetes`` Service's endpoints are the advertise addresses
of every API server, so all control planes advertise an address of the primary family. A subnet lists one
CIDR, or two of different families (dual stack). The kubelet's node IPs (``--node-ip``) are one address, or
one of each family.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

# kubeadm's default serviceSubnet, which decides the primary family when none is given.
DEFAULT_SERVICE_SUBNET = "10.96.0.0/12"
# kube-apiserver and kubeadm keep Service subnets to 2^20 addresses (MaximumBitsForServiceSubnet).
MAX_SERVICE_SUBNET_HOST_BITS = 20

_SUBNET_VARIABLES = {"pod": "control_plane_pod_subnet", "service": "control_plane_service_subnet"}


def family_name(version):
    return "IPv6" if version == 6 else "IPv4"


def _items(value):
    """A comma-separated string or a list -> the stripped non-empty items."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        parts = [str(item) for item in value]
    else:
        parts = str(value).split(",")
    return [part.strip() for part in parts if part.strip()]


def parse_subnets(value, kind):
    """The networks of a pod or Service subnet setting (one CIDR, or two of different families).

    kind: 'pod' or 'service'. Returns (networks, errors); errors are sentences naming the variable."""
    variable = _SUBNET_VARIABLES[kind]
    networks, errors = [], []
    for text in _items(value):
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            errors.append("%s: %r is not a CIDR: write a network such as %s, or two separated by a comma for "
                          "dual stack." % (variable, text, "10.244.0.0/16" if kind == "pod" else "10.96.0.0/12"))
    if errors:
        return [], errors
    if len(networks) > 2:
        errors.append("%s lists %d subnets: a cluster has one, or two of different families for dual stack (IPv4 "
                      "and IPv6)." % (variable, len(networks)))
    elif len(networks) == 2 and networks[0].version == networks[1].version:
        errors.append("%s lists two %s subnets (%s): dual stack needs one IPv4 and one IPv6 subnet; keep one of them."
                      % (variable, family_name(networks[0].version), ", ".join(str(n) for n in networks)))
    if kind == "service":
        for network in networks:
            host_bits = network.max_prefixlen - network.prefixlen
            if host_bits > MAX_SERVICE_SUBNET_HOST_BITS:
                errors.append("%s: %s is too large for Service addresses: kube-apiserver allows at most /%d for %s; "
                              "use a smaller subnet." % (variable, network,
                                                         network.max_prefixlen - MAX_SERVICE_SUBNET_HOST_BITS,
                                                         family_name(network.version)))
    return networks, errors


def primary_family(service_networks):
    """The cluster's primary family: its first Service subnet's (kubeadm's default Service subnet is IPv4)."""
    if service_networks:
        return service_networks[0].version
    return ipaddress.ip_network(DEFAULT_SERVICE_SUBNET).version


def _node_addresses(report):
    """Every address on the node's interfaces (lo included: an advertise address may live there in BGP mode)."""
    found = set()
    for cidrs in (report.get("interfaces") or {}).values():
        for cidr in cidrs or []:
            try:
                found.add(ipaddress.ip_interface(cidr).ip)
            except ValueError:
                continue
    return found


def advertise_family(explicit, report):
    """(family, how) of the address a control plane's API server advertises: the explicit address's, else the
    one kubeadm picks: the address of the IPv4 default route's interface when the node has that route (the
    node report's default_interface). (None, None) when it cannot be known."""
    if explicit:
        return ipaddress.ip_address(explicit).version, "control_plane_advertise_address %s" % explicit
    if report and report.get("default_interface"):
        return 4, "the IPv4 address of its default route (%s), which kubeadm takes without " \
                  "control_plane_advertise_address" % report["default_interface"]
    return None, None


def check_families(settings, control_planes, workers, reports):
    """The refusals of address families, one sentence each.

    settings: pod_subnet, service_subnet (strings or lists), advertise_addresses (host -> address or ''),
    node_ips (host -> list of addresses or a comma-separated string). reports: host -> preflight_facts report
    of the nodes that answered (may be empty: then only the settings are checked)."""
    errors = []
    pod_networks, pod_errors = parse_subnets(settings.get("pod_subnet"), "pod")
    service_networks, service_errors = parse_subnets(settings.get("service_subnet"), "service")
    errors.extend(pod_errors + service_errors)
    if service_errors:
        return errors
    primary = primary_family(service_networks)
    service_text = (", ".join(str(n) for n in service_networks) if service_networks
                    else "kubeadm's default %s" % DEFAULT_SERVICE_SUBNET)
    cluster_families = set(n.version for n in service_networks + pod_networks) or set([primary])
    if pod_networks and not pod_errors and pod_networks[0].version != primary:
        errors.append("control_plane_pod_subnet starts with an %s subnet but the Service subnet (%s) with an %s one: "
                      "list the families in the same order in both." % (
                          family_name(pod_networks[0].version), service_text, family_name(primary)))

    advertise = settings.get("advertise_addresses") or {}
    node_ips = settings.get("node_ips") or {}
    families = {}
    for name in control_planes:
        explicit = str(advertise.get(name) or "").strip()
        if explicit:
            try:
                ipaddress.ip_address(explicit)
            except ValueError:
                errors.append("%s: control_plane_advertise_address %r is not an IP address: set it to an address of "
                              "the node." % (name, explicit))
                continue
        report = reports.get(name)
        if explicit and report and report.get("interfaces") and \
                ipaddress.ip_address(explicit) not in _node_addresses(report):
            errors.append("%s: control_plane_advertise_address %s is not an address of the node: set it to one of "
                          "the addresses of its interfaces." % (name, explicit))
            continue
        family, how = advertise_family(explicit, report)
        if family is None:
            continue
        families.setdefault(family, []).append(name)
        if family != primary:
            errors.append("%s advertises %s, an %s address, but the cluster's first Service subnet is %s (%s): "
                          "kube-apiserver refuses an advertise address of another family than its Services; set "
                          "control_plane_advertise_address to the node's %s address, or put an %s subnet first in "
                          "control_plane_service_subnet." % (
                              name, how, family_name(family), family_name(primary), service_text,
                              family_name(primary), family_name(family)))
    if len(families) > 1:
        errors.append("The control planes advertise addresses of both families (IPv4: %s; IPv6: %s): the kubernetes "
                      "Service lists every API server's advertise address and has one family; give every control "
                      "plane an advertise address of the same family." % (
                          ", ".join(families.get(4, [])), ", ".join(families.get(6, []))))

    for name in list(control_planes) + [w for w in workers if w not in control_planes]:
        variable = "control_plane_node_ip" if name in control_planes else "worker_node_ip"
        texts = _items(node_ips.get(name))
        report = reports.get(name)
        if not texts:
            # Without --node-ip the kubelet takes an IPv4 address when the node has one on its default route:
            # a single-stack IPv6 cluster would list its Nodes with IPv4 addresses no Pod can reach.
            if cluster_families == set([6]) and report and report.get("default_interface"):
                errors.append("%s: the cluster is IPv6 only but the kubelet would report the node's IPv4 address "
                              "(of its default route, %s): set %s to the node's IPv6 address." % (
                                  name, report["default_interface"], variable))
            continue
        try:
            addresses = [ipaddress.ip_address(text) for text in texts]
        except ValueError:
            errors.append("%s: %s %s is not a list of IP addresses: give the node's address, or one IPv4 and one "
                          "IPv6 address for dual stack." % (name, variable, ", ".join(texts)))
            continue
        if len(addresses) > 2 or (len(addresses) == 2 and addresses[0].version == addresses[1].version):
            errors.append("%s: %s %s: the kubelet takes one address, or one of each family for dual stack." % (
                name, variable, ", ".join(texts)))
            continue
        foreign = [str(a) for a in addresses if a.version not in cluster_families]
        if foreign:
            errors.append("%s: %s %s is %s but the cluster has no %s subnet: give the node's %s address." % (
                name, variable, ", ".join(foreign), family_name(ipaddress.ip_address(foreign[0]).version),
                family_name(ipaddress.ip_address(foreign[0]).version), " or ".join(
                    family_name(f) for f in sorted(cluster_families))))
            continue
        if report and report.get("interfaces"):
            missing = [str(a) for a in addresses if a not in _node_addresses(report)]
            if missing:
                errors.append("%s: %s %s is not an address of the node: give addresses of its interfaces." % (
                    name, variable, ", ".join(missing)))
    return errors
