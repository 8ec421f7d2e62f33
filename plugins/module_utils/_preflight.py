# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Preflight checks of the HA bootstrap: pure functions over the inventory and what the nodes report.

Nothing here touches a host. ``evaluate`` takes the cluster settings and one report per node (as made
by the ``preflight_facts`` module) and returns the refusals (sentences that say what is wrong and what
to do), the warnings, and which control plane initializes (or already holds) the cluster.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import os

from ansible_collections.vipadm.kubeadm.plugins.module_utils._ip_families import check_families, family_name
from ansible_collections.vipadm.kubeadm.plugins.module_utils._versions import (
    SUPPORTED_KUBERNETES_MINORS, parse_version, skew_errors)

# Kubernetes minors vipadm bootstraps (kubeadm config API v1beta3 below 1.31, v1beta4 from 1.31).
SUPPORTED_KUBERNETES = ((1, SUPPORTED_KUBERNETES_MINORS[0]), (1, SUPPORTED_KUBERNETES_MINORS[1]))
# kube-vip releases the bootstrap works with: --k8sConfigPath (super-admin.conf during init) exists from
# v0.7.0; the manifest generator knows releases up to v1.2.x.
SUPPORTED_KUBE_VIP = ((0, 7), (1, 2))

# What a node may report as its kubeadm state (see preflight_facts).
STATE_NONE = "none"              # no kubeadm file at all: a bare node
STATE_CONTROL_PLANE = "control_plane"  # static Pod manifests of a control plane + kubelet.conf
STATE_WORKER = "worker"          # kubelet.conf, no control plane manifests
STATE_PARTIAL = "partial"        # some kubeadm files: an interrupted init/join
NODE_STATES = (STATE_NONE, STATE_CONTROL_PLANE, STATE_WORKER, STATE_PARTIAL)

_BOOL_WORDS = {"true": True, "false": False, "1": True, "0": False, "t": True, "f": False}


def _in_range(version, supported):
    low, high = supported
    return low <= version[:2] <= high


def _fmt_range(supported):
    (lmaj, lmin), (hmaj, hmin) = supported
    return "%d.%d to %d.%d" % (lmaj, lmin, hmaj, hmin)


def check_kubernetes_version(text):
    version = parse_version(text)
    if version is None:
        return ["vipadm_kubernetes_version %r is not a version: set it to a release such as 1.32.4." % (text,)]
    if not _in_range(version, SUPPORTED_KUBERNETES):
        return ["Kubernetes %s is not supported: vipadm bootstraps Kubernetes %s; set vipadm_kubernetes_version "
                "to one of those releases." % (text, _fmt_range(SUPPORTED_KUBERNETES))]
    return []


def check_kube_vip_version(text):
    version = parse_version(text)
    if version is None:
        return ["kube_vip_version %r is not a version: set it to a kube-vip release such as v0.8.9." % (text,)]
    if not _in_range(version, SUPPORTED_KUBE_VIP):
        return ["kube-vip %s is not supported: vipadm generates manifests for kube-vip %s; set kube_vip_version "
                "to one of those releases." % (text, _fmt_range(SUPPORTED_KUBE_VIP))]
    return []


def parse_address(text):
    """An IPv4/IPv6 address object, or None."""
    try:
        return ipaddress.ip_address(str(text).strip())
    except ValueError:
        return None


def check_vip(vip):
    if vip is None or str(vip).strip() == "":
        return ["kube_vip_address is not set: set it (group_vars/all) to a free address in the control "
                "planes' subnet that will carry the API server."]
    if parse_address(vip) is None:
        return ["kube_vip_address %r is not an IP address: set it to a free address such as 192.168.10.50 "
                "(a name is not allowed, kube-vip announces an address)." % (vip,)]
    return []


def check_port(port, name="kube_vip_port"):
    try:
        value = int(port)
    except (TypeError, ValueError):
        return ["%s %r is not a port number: use 1 to 65535 (the API server's default is 6443)." % (name, port)]
    if not 1 <= value <= 65535 or str(port).strip() != str(value):
        return ["%s %s is out of range: use 1 to 65535 (the API server's default is 6443)." % (name, port)]
    return []


def _parse_bool(text):
    return _BOOL_WORDS.get(str(text).strip().lower())


def parse_bgp_peer(peer, number=1):
    """Check one BGP peer, as a dict (address, as, password, multihop, port) or kube-vip's
    ``address:AS[:password[:multihop[:port]]]`` text. Returns a list of problems (empty when well-formed).
    Problems name the peer by its position, never by its text, which may hold a password."""
    what = "BGP peer %d" % number
    if isinstance(peer, dict):
        address, asn = peer.get("address"), peer.get("as", peer.get("asn"))
        multihop, port = peer.get("multihop"), peer.get("port")
    else:
        text = str(peer).strip()
        if text.startswith("["):  # [IPv6]:AS:...
            address, _bracket, rest = text[1:].partition("]")
            fields = [address] + rest.lstrip(":").split(":") if rest.startswith(":") else [address, ""]
        else:
            fields = text.split(":")
        fields += [""] * (5 - len(fields))
        address, asn, multihop, port = fields[0], fields[1], fields[3], fields[4]
    problems = []
    if parse_address(address) is None:
        problems.append("%s: %r is not an IP address" % (what, address))
    try:
        asn_value = int(asn)
        if not 1 <= asn_value <= 4294967295:
            raise ValueError
    except (TypeError, ValueError):
        problems.append("%s: AS %r is not a number from 1 to 4294967295" % (what, asn))
    if multihop not in (None, "") and not isinstance(multihop, bool) and _parse_bool(multihop) is None:
        problems.append("%s: multihop %r is not true or false" % (what, multihop))
    if port not in (None, ""):
        problems.extend("%s: %s" % (what, p) for p in check_port(port, "port"))
    return problems


def check_bgp_peers(peers):
    if isinstance(peers, str):
        peers = [p for p in peers.split(",") if p.strip()]
    if not peers:
        return ["BGP mode needs peers: set kube_vip_bgp_peers to the routers kube-vip announces the VIP to "
                "(address, AS; optional password, multihop, port)."]
    errors = []
    for number, peer in enumerate(peers, 1):
        problems = parse_bgp_peer(peer, number)
        if problems:
            errors.append("; ".join(problems) + ": write each peer as address:AS[:password[:multihop[:port]]] "
                          "or a mapping with address and as.")
    return errors


def _node_interface_networks(node, interface):
    """IPv4/IPv6 interface networks of one interface of a node, without /32 and /128 host routes
    (kube-vip adds the VIP as a host address, it is not the subnet)."""
    networks = []
    for cidr in (node.get("interfaces") or {}).get(interface) or []:
        try:
            iface = ipaddress.ip_interface(cidr)
        except ValueError:
            continue
        if iface.network.prefixlen < iface.max_prefixlen:
            networks.append(iface)
    return networks


SERVICES_ADDRESSES = "kube_vip_services_addresses"


def _network(text):
    """An IPv4/IPv6 network (host bits allowed), or None."""
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def parse_services_entry(entry):
    """(first, last) addresses of one kube_vip_services_addresses entry: an address, a range ``first-last``
    or a CIDR (the forms of kube-vip's cloud provider). Raises ValueError with a sentence."""
    text = str(entry).strip()
    example = ("write an address, a range first-last or a CIDR, for example 192.168.10.200, "
               "192.168.10.200-192.168.10.220 or 192.168.10.224/28")
    if "/" in text:
        network = _network(text)
        if network is None:
            raise ValueError("%s: %r is not a CIDR: %s." % (SERVICES_ADDRESSES, text, example))
        if ipaddress.ip_interface(text).ip != network.network_address:
            raise ValueError("%s: %s has bits set after its prefix: write the network, %s." % (
                SERVICES_ADDRESSES, text, network))
        return network.network_address, network.broadcast_address
    if "-" in text:
        low, _dash, high = text.partition("-")
        first, last = parse_address(low), parse_address(high)
        if first is None or last is None:
            raise ValueError("%s: %r is not a range of two addresses: %s." % (SERVICES_ADDRESSES, text, example))
        if first.version != last.version:
            raise ValueError("%s: the range %s mixes IPv4 and IPv6: give each family its own entry." % (
                SERVICES_ADDRESSES, text))
        if first > last:
            raise ValueError("%s: the range %s ends before it starts: write it %s-%s." % (
                SERVICES_ADDRESSES, text, last, first))
        return first, last
    address = parse_address(text)
    if address is None:
        raise ValueError("%s: %r is not an address: %s." % (SERVICES_ADDRESSES, text, example))
    return address, address


# At most this many Service addresses are probed per node and run: each free one costs a probe's wait, and the
# probes run at once (preflight_facts), so a long range would flood the link and slow every run.
SERVICES_PROBE_LIMIT = 64


def _services_entries(entries):
    if isinstance(entries, str):
        return [part for part in entries.split(",") if part.strip()]
    return list(entries or [])


def services_probe_addresses(entries, limit=SERVICES_PROBE_LIMIT):
    """(addresses to probe, how many were left out) of kube_vip_services_addresses: every address of every
    well-formed entry, in order, at most limit of them (malformed entries are refused by check_services)."""
    addresses, total = [], 0
    for entry in _services_entries(entries):
        try:
            first, last = parse_services_entry(entry)
        except ValueError:
            continue
        count = int(last) - int(first) + 1
        total += count
        for offset in range(min(count, max(limit - len(addresses), 0))):
            addresses.append(str(first + offset))
    return addresses, total - len(addresses)


def arping_reply_mac(output):
    """The Ethernet address (lower case) in arping's 'Unicast reply from A [MAC]' line, else None."""
    for line in (output or "").splitlines():
        if "reply from" in line and "[" in line and "]" in line:
            return line[line.index("[") + 1:line.index("]")].strip().lower() or None
    return None


def parse_link_macs(entries):
    """`ip -j addr show` output (a list) -> {interface: Ethernet address} of the interfaces that have one."""
    return {link["ifname"]: str(link["address"]).lower() for link in entries or []
            if link.get("ifname") and link.get("address") and link.get("link_type", "ether") == "ether"}


def check_services_answers(ranges, reports):
    """Refusals for Service addresses that answer ARP or Neighbor Discovery from a machine that is not a node.

    ranges: (entry text, first, last) of each well-formed entry of kube_vip_services_addresses; reports: node
    reports with services_answers ({address: Ethernet address of the answer, '' when unknown}) and
    interface_macs. An answer from a node's own interface is kube-vip holding a Service address already (a
    re-run), so only the other answers are refused, one sentence per entry of kube_vip_services_addresses."""
    node_macs = set()
    for report in reports.values():
        node_macs.update(str(mac).lower() for mac in (report.get("interface_macs") or {}).values() if mac)
    foreign = {}  # address -> (Ethernet address, [nodes that saw the answer])
    for name in sorted(reports):
        for address, mac in (reports[name].get("services_answers") or {}).items():
            mac = str(mac or "").lower()
            parsed = parse_address(address)
            if parsed is None or (mac and mac in node_macs):
                continue
            foreign.setdefault(parsed, (mac, []))[1].append(name)
    errors = []
    for text, first, last in ranges:
        held = sorted(address for address in foreign if _contains(first, last, address))
        if not held:
            continue
        seen = sorted({name for address in held for name in foreign[address][1]})
        answers = ["%s (from %s)" % (address, foreign[address][0] or "an unnamed link-layer address")
                   for address in held]
        them = "it" if len(held) == 1 else "them"
        errors.append("%s: %s%s already answer%s %s (seen from %s) though no node holds %s: another machine uses "
                      "%s; free %s or leave %s out of %s." % (
                          SERVICES_ADDRESSES, _join_names(answers), "" if first == last else " of %s" % text,
                          "s" if len(held) == 1 else "", "Neighbor Discovery" if held[0].version == 6 else "ARP",
                          _join_names(seen), them, them, them, them, SERVICES_ADDRESSES))
    return errors


def _node_addresses(report):
    """The addresses a node has of its own: its inventory address and those of its interfaces but lo. Host
    addresses (/32, /128) are left out: kube-vip adds the VIP and the Service addresses it holds that way."""
    found = []
    inventory = parse_address(report.get("address"))
    if inventory is not None:
        found.append((inventory, None))
    for iface in sorted(report.get("interfaces") or {}):
        for network in _node_interface_networks(report, iface):
            if not network.ip.is_loopback and all(network.ip != seen for seen, _iface in found):
                found.append((network.ip, iface))
    return found


def _contains(first, last, address):
    return first.version == address.version and first <= address <= last


def _join_names(names):
    names = list(names)
    return names[0] if len(names) == 1 else "%s and %s" % (", ".join(names[:-1]), names[-1])


def check_services(settings, control_planes, reports, vip):
    """The refusals of services mode (kube_vip_services, kube_vip_services_election, kube_vip_services_addresses).

    vip: the parsed VIP or None; reports: the node reports that answered. In ARP mode every Service address
    must be in the subnet of the VIP interface of each control plane (kube-vip adds it there and answers ARP
    for it), never its network or broadcast address; in any mode it must not be the VIP, a node's address, or
    in two entries."""
    errors = []
    services = bool(settings.get("services"))
    entries = _services_entries(settings.get("services_addresses"))
    if settings.get("services_election") and not services:
        errors.append("kube_vip_services_election is true but kube_vip_services is false: the per-Service election "
                      "is part of kube-vip's services mode; set kube_vip_services: true, or drop "
                      "kube_vip_services_election.")
    if entries and not services:
        errors.append("%s is set but kube_vip_services is false: no kube-vip would announce those addresses; set "
                      "kube_vip_services: true, or remove %s." % (SERVICES_ADDRESSES, SERVICES_ADDRESSES))
    ranges = []
    for entry in entries:
        try:
            first, last = parse_services_entry(entry)
        except ValueError as error:
            errors.append(str(error))
            continue
        ranges.append((str(entry).strip(), first, last))

    for index, (text, first, last) in enumerate(ranges):
        for other, other_first, other_last in ranges[index + 1:]:
            if first.version == other_first.version and first <= other_last and other_first <= last:
                errors.append("%s: %s and %s overlap: list each address once." % (SERVICES_ADDRESSES, text, other))
    for text, first, last in ranges:
        if vip is not None and _contains(first, last, vip):
            errors.append("%s: %s %s the control plane VIP %s (kube_vip_address): Service addresses must be other "
                          "free addresses." % (SERVICES_ADDRESSES, text, "is" if first == last else "holds", vip))
        hits = []
        for name in sorted(reports):
            for address, iface in _node_addresses(reports[name]):
                if _contains(first, last, address):
                    where = "on %s" % iface if iface else ""
                    if first != last:
                        where = " ".join(part for part in (str(address), where) if part)
                    hits.append("%s (%s)" % (name, where) if where else name)
                    break
        if hits:
            errors.append("%s: %s %s the address of %s: Service addresses must be free addresses that no node uses."
                          % (SERVICES_ADDRESSES, text, "is" if first == last else "holds", _join_names(hits)))
    errors.extend(check_services_answers(ranges, reports))

    if settings.get("mode", "arp") != "arp":
        return errors
    for text, first, last in ranges:
        outside, edge = {}, {}
        for name in control_planes:
            report = reports.get(name)
            if report is None:
                continue
            iface = settings.get("interface") or report.get("default_interface")
            if not iface or iface not in (report.get("interfaces") or {}):
                continue  # refused with the VIP's own checks
            networks = [net.network for net in _node_interface_networks(report, iface) if net.version == first.version]
            inside = [net for net in networks if first in net and last in net]
            if not inside:
                outside.setdefault("%s: %s" % (iface, ", ".join(str(n) for n in networks) or "no address"), []).append(
                    name)
                continue
            network = inside[0]
            if network.version == 4 and network.prefixlen < 31:
                for special, what in ((network.network_address, "network"), (network.broadcast_address, "broadcast")):
                    if first <= special <= last:
                        edge.setdefault((str(special), what, str(network)), []).append(name)
        for subnets, names in sorted(outside.items()):
            errors.append("%s: %s is outside the subnet of the VIP interface of %s (%s): in ARP mode kube-vip puts a "
                          "Service address on that interface and answers ARP for it there, so it must be a free "
                          "address of the control planes' subnet; pick one there, or use BGP mode." % (
                              SERVICES_ADDRESSES, text, _join_names(names), subnets))
        for (special, what, network), names in sorted(edge.items()):
            errors.append("%s: %s holds %s, the %s address of %s (the subnet of %s): no machine can use it; leave it "
                          "out." % (SERVICES_ADDRESSES, text, special, what, network, _join_names(names)))
    return errors


def choose_init_host(control_planes, nodes, configured=None):
    """The control plane that runs (or already ran) kubeadm init.

    A control plane that already carries a cluster wins, so an existing cluster is never initialized a
    second time; otherwise the configured host, otherwise the first of the group."""
    holding = [name for name in control_planes
               if (nodes.get(name) or {}).get("cluster_state") == STATE_CONTROL_PLANE]
    if configured in holding:
        return configured
    if holding:
        return holding[0]
    if configured:
        return configured
    return control_planes[0] if control_planes else None


def check_reachable(reports):
    """One refusal per node that Ansible could not reach (its preflight_facts result is Ansible's
    ``unreachable`` result: the preflight play reads every node before anything changes)."""
    errors = []
    for name, report in reports.items():
        if report.get("unreachable"):
            reason = str(report.get("msg") or "no answer").replace("Task failed: ", "", 1).strip().rstrip(".")
            errors.append("%s is unreachable (%s): power it on and check that SSH answers, or remove it from "
                          "the inventory, then run again." % (name, reason))
    return errors


# kubeadm commands that change a node. One of them still running when a run starts was left by an earlier
# run whose controller stopped (the command goes on without it): the node's files are then in flux.
KUBEADM_CHANGING_VERBS = ("init", "join", "reset")
_SHELLS = ("sh", "bash", "dash")


def running_kubeadm(processes):
    """[(pid, 'kubeadm <verb>')] of the processes that run kubeadm init, join or reset (``init phase ...``,
    which join credentials use, does not count). processes: (pid, argv) pairs, as /proc/<pid>/cmdline."""
    found = []
    for pid, argv in processes:
        args = list(argv)
        if len(args) > 1 and os.path.basename(args[0]) in _SHELLS:  # a kubeadm wrapper script: sh .../kubeadm
            args = args[1:]
        if not args or os.path.basename(args[0]) != "kubeadm":
            continue
        words = [a for a in args[1:] if not a.startswith("-")]
        if words and words[0] in KUBEADM_CHANGING_VERBS and words[1:2] != ["phase"]:
            found.append((pid, "kubeadm " + words[0]))
    return found


def check_kubeadm_running(reports):
    """One refusal per node on which a kubeadm init, join or reset still ran after preflight_facts waited."""
    errors = []
    for name, report in sorted(reports.items()):
        running = report.get("kubeadm_running") or []
        if running:
            errors.append("%s: %s still running after %s s (left by a run that stopped half-way, e.g. its controller "
                          "was killed): wait for it to end, or stop it, then run again."
                          % (name, ", ".join(running), report.get("kubeadm_waited", "?")))
    return errors


def evaluate(settings, control_planes, workers, nodes):
    """Check the whole inventory and every node report.

    settings: dict with vip, port, kubernetes_version, kube_vip_version, mode ('arp' or 'bgp'),
      bgp_peers, interface (None = each host's default-route interface), init_host (None = first), services,
      services_election, services_addresses (kube-vip's services mode, see check_services), pod_subnet,
      service_subnet, advertise_addresses, node_ips (address families, see _ip_families.check_families).
    control_planes, workers: inventory host names.
    nodes: inventory host name -> report of preflight_facts (hostname, address, interfaces,
      default_interface, kubeadm_path, kubeadm_version, kubelet_version, cluster_state, vip_tcp_answers,
      vip_arp_answers), may be empty
      when only the inventory is checked.
    Returns dict(errors=[...], warnings=[...], init_host=name, cluster_exists=bool).
    """
    errors, warnings = [], []
    control_planes = list(control_planes or [])
    workers = list(workers or [])
    if not control_planes:
        errors.append("The inventory has no control_plane group (or it is empty): put the control plane nodes "
                      "in a group named control_plane.")
    elif len(control_planes) % 2 == 0:
        warnings.append("%d control planes is an even number: etcd keeps quorum with a majority, so %d nodes "
                        "survive no more failures than %d; use an odd number."
                        % (len(control_planes), len(control_planes), len(control_planes) - 1))
    both = sorted(set(control_planes) & set(workers))
    if both:
        errors.append("%s are in both control_plane and workers: put each node in one of them."
                      % ", ".join(both))
    configured = settings.get("init_host")
    if configured and configured not in control_planes:
        errors.append("control_plane_init_host %r is not in the control_plane group: name one of %s."
                      % (configured, ", ".join(control_planes) or "its hosts"))

    vip_errors = check_vip(settings.get("vip"))
    errors.extend(vip_errors)
    errors.extend(check_port(settings.get("port", 6443)))
    errors.extend(check_kubernetes_version(settings.get("kubernetes_version")))
    if settings.get("kube_vip_version") is not None:  # unset: the kube_vip role's default, supported
        errors.extend(check_kube_vip_version(settings.get("kube_vip_version")))
    mode = settings.get("mode", "arp")
    if mode not in ("arp", "bgp"):
        errors.append("kube-vip mode %r is unknown: use arp or bgp." % (mode,))
    if mode == "bgp":
        errors.extend(check_bgp_peers(settings.get("bgp_peers")))

    vip = None if vip_errors else parse_address(settings["vip"])
    reports = {name: nodes[name] for name in control_planes + workers if name in (nodes or {})}
    errors.extend(check_reachable(reports))
    # an unreachable node reported nothing: leave it out of the checks that read the reports
    reports = {name: report for name, report in reports.items() if not report.get("unreachable")}
    errors.extend(check_kubeadm_running(reports))
    cluster_exists = any(r.get("cluster_state") == STATE_CONTROL_PLANE for r in reports.values())
    all_bare = bool(reports) and all(r.get("cluster_state", STATE_NONE) == STATE_NONE for r in reports.values())

    seen = {}
    for name in dict.fromkeys(control_planes + workers):  # a host in both groups is one node, reported once
        report = reports.get(name)
        if report is None:
            continue
        hostname = str(report.get("hostname") or "").lower()
        if hostname:
            seen.setdefault(hostname, []).append(name)
        if not report.get("kubeadm_path"):
            errors.append("%s: kubeadm is not installed (not found in PATH): install kubeadm, kubelet and a "
                          "container runtime first (the node_prep role does it)." % name)
        elif not check_kubernetes_version(settings.get("kubernetes_version")):
            errors.extend(skew_errors(name, settings.get("kubernetes_version"), report.get("kubeadm_version"),
                                      report.get("kubelet_version")))
        if vip is not None:
            on_interfaces = sorted(iface for iface in (report.get("interfaces") or {})
                                   if any(net.ip == vip for net in _node_interface_networks(report, iface)))
            if parse_address(report.get("address")) == vip or on_interfaces:
                errors.append("%s: kube_vip_address %s is the node's own address%s: the VIP must be a free "
                              "address that no node uses." % (
                                  name, vip, " (on %s)" % ", ".join(on_interfaces) if on_interfaces else ""))
        state = report.get("cluster_state")
        if name in workers and state == STATE_CONTROL_PLANE:
            errors.append("%s is listed in workers but is a control plane of the cluster: move it to the "
                          "control_plane group, or reset it (playbooks/reset.yml) first." % name)
        if name in control_planes and state == STATE_WORKER:
            errors.append("%s is listed in control_plane but already joined the cluster as a worker: move it to "
                          "the workers group, or reset it (playbooks/reset.yml) first." % name)
    for hostname, names in sorted(seen.items()):
        if len(names) > 1:
            errors.append("%s report the same hostname %r: Kubernetes names nodes by hostname, give each node "
                          "its own." % (", ".join(names), hostname))

    if vip is not None and mode == "arp":
        for name in control_planes:
            report = reports.get(name)
            if report is None:
                continue
            iface = settings.get("interface") or report.get("default_interface")
            if not iface:
                errors.append("%s: no interface for the VIP: the node has no default route; set "
                              "kube_vip_interface." % name)
                continue
            if iface not in (report.get("interfaces") or {}):
                errors.append("%s: interface %s does not exist (the node has %s): set kube_vip_interface to the "
                              "interface of the control plane network." % (
                                  name, iface, ", ".join(sorted(report.get("interfaces") or {})) or "none"))
                continue
            # the VIP's family only; an IPv6 link-local prefix (every interface has one) is no subnet for a VIP
            networks = [net for net in _node_interface_networks(report, iface) if net.version == vip.version
                        and (not net.ip.is_link_local or vip.is_link_local)]
            if not any(vip in net.network for net in networks):
                errors.append("%s: kube_vip_address %s is outside the subnet of %s (%s): in ARP mode the VIP must "
                              "be in the control planes' subnet; pick a free address there or use BGP." % (
                                  name, vip, iface,
                                  ", ".join(str(n) for n in networks) or "no %s address" % family_name(vip.version)))

    errors.extend(check_services(settings, control_planes, reports, vip))
    errors.extend(check_families(settings, control_planes, workers, reports))

    if all_bare and vip is not None:
        holders = sorted(name for name, r in reports.items() if r.get("vip_tcp_answers") or r.get("vip_arp_answers"))
        if holders:
            errors.append("kube_vip_address %s already answers (seen from %s) but no node has a cluster yet: "
                          "another machine holds that address; pick a free address." % (vip, ", ".join(holders)))

    init_host = choose_init_host(control_planes, reports, configured if configured in control_planes else None)
    return dict(errors=errors, warnings=warnings, init_host=init_host, cluster_exists=cluster_exists)


# Files kubeadm writes; which of them exist tells how far init/join got on a node.
KUBEADM_FILES = (
    "/etc/kubernetes/manifests/kube-apiserver.yaml",
    "/etc/kubernetes/manifests/etcd.yaml",
    "/etc/kubernetes/kubelet.conf",
    "/etc/kubernetes/bootstrap-kubelet.conf",
    "/etc/kubernetes/admin.conf",
    "/etc/kubernetes/pki/ca.crt",
    "/var/lib/kubelet/config.yaml",
)


def classify_state(present):
    """The kubeadm state of a node from the set of KUBEADM_FILES that exist on it."""
    present = set(present)
    control_plane = {"/etc/kubernetes/manifests/kube-apiserver.yaml", "/etc/kubernetes/manifests/etcd.yaml",
                     "/etc/kubernetes/kubelet.conf", "/etc/kubernetes/admin.conf"}
    if control_plane <= present:
        return STATE_CONTROL_PLANE
    if "/etc/kubernetes/kubelet.conf" in present and not present & {
            "/etc/kubernetes/manifests/kube-apiserver.yaml", "/etc/kubernetes/manifests/etcd.yaml"}:
        return STATE_WORKER
    return STATE_PARTIAL if present else STATE_NONE


def parse_ip_addr_json(entries):
    """`ip -j addr show` output (a list) -> {interface: ['addr/prefix', ...]}."""
    result = {}
    for link in entries or []:
        name = link.get("ifname")
        if not name:
            continue
        result[name] = ["%s/%s" % (a["local"], a["prefixlen"]) for a in link.get("addr_info") or []
                        if "local" in a and "prefixlen" in a]
    return result


def default_interface(routes):
    """`ip -j route show default` output (a list) -> the interface of the first default route, or None."""
    for route in routes or []:
        if route.get("dev"):
            return route["dev"]
    return None
