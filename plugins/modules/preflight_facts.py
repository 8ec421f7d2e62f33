#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: preflight_facts
short_description: Report what the bootstrap preflight needs to know about a node, changing nothing
description:
  - Reports the node's hostname, interfaces with their addresses, the default-route interface, where
    C(kubeadm) is, the versions of the installed kubeadm and kubelet, how far C(kubeadm init) or C(kubeadm join) got on it (from the files kubeadm writes),
    and whether the VIP already answers (TCP from the node; ARP, or Neighbor Discovery for an IPv6 VIP, on the
    VIP interface when asked).
  - A C(kubeadm init), C(join) or C(reset) still running on the node (left by an earlier run whose controller
    stopped; kubeadm goes on without it) is waited for, up to O(kubeadm_timeout) seconds, before the node's
    files are read. Otherwise a later task would judge, and perhaps reset, a node in the middle of its init.
  - Read-only; the checks on these facts are made by M(vipadm.kubeadm.preflight).
version_added: 0.1.0
author:
  - vipadm developers (@vipadm)
options:
  vip:
    description: The VIP to probe. Nothing is probed when empty.
    type: str
  port:
    description: TCP port of the API server behind the VIP.
    type: int
    default: 6443
  interface:
    description:
      - Interface for the ARP or Neighbor Discovery probe; the default-route interface when empty.
    type: str
  probe_arp:
    description:
      - Send ARP requests for an IPv4 VIP (needs C(arping) from iputils; skipped with a warning without it), or
        Neighbor Solicitations for an IPv6 VIP (a raw ICMPv6 socket of the module, nothing to install), to
        which a machine that holds the address answers.
      - Only on a node without kubeadm files, the only case in which M(vipadm.kubeadm.preflight) decides anything
        from it (when TCP found nothing); that saves the probe's wait (about 2 s) on re-runs. It runs while the
        TCP probe waits, so a bare node costs the longer of the two, not their sum.
    type: bool
    default: false
  services_addresses:
    description:
      - The addresses Services of type LoadBalancer may take (C(kube_vip_services_addresses)), each an address, a
        range C(first-last) or a CIDR. With O(probe_arp), each of them (the first 64, with a warning when there are more)
        is probed the same way as the VIP, all at once, on every run; the answers and the Ethernet addresses they
        came from are in RV(services_answers).
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds to wait for an answer of the VIP, per probe.
    type: float
    default: 1.5
  kubeadm_timeout:
    description:
      - Seconds to wait for a C(kubeadm init), C(join) or C(reset) still running on the node to end. What still
        runs after that is reported in RV(kubeadm_running), and M(vipadm.kubeadm.preflight) refuses the node.
    type: float
    default: 300
extends_documentation_fragment:
  - vipadm.kubeadm.read_only
notes:
  - Needs C(ip) from iproute2 with JSON output (C(ip -j)).
  - A refused TCP connection counts as an answer, because some machine holds the address.
"""

EXAMPLES = r"""
- name: Look at the node before changing anything
  vipadm.kubeadm.preflight_facts:
    vip: "{{ kube_vip_address }}"
    port: 6443
    probe_arp: true
  register: node_report
"""

RETURN = r"""
hostname:
  description: The node's hostname (lower case, as Kubernetes names the Node).
  returned: always
  type: str
  sample: cp1
interfaces:
  description: Interfaces and their addresses in CIDR notation.
  returned: always
  type: dict
  sample: {"eth0": ["198.51.100.11/24"], "lo": ["127.0.0.1/8"]}
default_interface:
  description: Interface of the default route, null without one.
  returned: always
  type: str
  sample: eth0
kubelet_enabled:
  description: Whether the kubelet service is enabled (a C(kubelet.service) link in a C(*.wants) directory of
    C(/etc/systemd/system)), so that the bootstrap enables it only when needed.
  returned: always
  type: bool
  sample: true
kubeadm_path:
  description: Path of kubeadm, null when it is not installed.
  returned: always
  type: str
  sample: /usr/bin/kubeadm
kubeadm_version:
  description: What C(kubeadm version -o short) prints; null when kubeadm is not installed or did not answer.
  returned: always
  type: str
  sample: v1.36.3
kubelet_version:
  description: What C(kubelet --version) prints; null when the kubelet is not installed or did not answer.
  returned: always
  type: str
  sample: Kubernetes v1.36.3
api_server_version:
  description: The Kubernetes version of this node's C(/etc/kubernetes/manifests/kube-apiserver.yaml) (its image
    tag); null on a node without it.
  returned: always
  type: str
  sample: v1.36.3
api_server_endpoint:
  description: C(address) and C(port) of this node's API server (the C(--advertise-address) and C(--secure-port) of
    its C(kube-apiserver.yaml)); null on a node without it.
  returned: always
  type: dict
  sample: {"address": "198.51.100.11", "port": 6443}
kubeadm_files:
  description: The kubeadm-written files that exist.
  returned: always
  type: list
  elements: str
cluster_state:
  description: C(none), C(control_plane), C(worker) or C(partial) (an interrupted init or join).
  returned: always
  type: str
  sample: none
kubeadm_running:
  description: The C(kubeadm init), C(join) or C(reset) commands still running on the node after O(kubeadm_timeout),
    with their PIDs; empty normally.
  returned: always
  type: list
  elements: str
  sample: ["kubeadm init (PID 286)"]
kubeadm_waited:
  description: Seconds spent waiting for a running C(kubeadm init), C(join) or C(reset) to end (0 when none ran).
  returned: always
  type: float
  sample: 0.0
vip_tcp_answers:
  description: Whether a TCP connection to the VIP port was accepted or refused (someone holds the VIP).
  returned: always
  type: bool
vip_arp_answers:
  description: Whether a machine answered ARP (IPv4) or Neighbor Discovery (IPv6) for the VIP; null when not probed.
  returned: always
  type: bool
interface_macs:
  description: The Ethernet address of each of the node's Ethernet interfaces (lower case).
  returned: always
  type: dict
  sample: {"eth0": "02:ab:cd:ef:01:0b"}
services_answers:
  description:
    - The addresses of O(services_addresses) that a machine answered for, each with the Ethernet address of the
      answer (empty when the answer named none); empty when nothing answered or nothing was probed.
    - M(vipadm.kubeadm.preflight) refuses those whose answer did not come from a node's own interface.
  returned: always
  type: dict
  sample: {"198.51.100.60": "02:00:5e:10:00:01"}
"""

import errno
import glob
import json
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _half_init
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm_state
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _ndp
from ansible_collections.vipadm.kubeadm.plugins.module_utils import _preflight


BIN_DIRS = ["/usr/local/bin", "/usr/bin"]
# Service addresses probed at once: each free address waits the whole probe, so one after another would take
# minutes for a long range.
SERVICES_PROBE_WORKERS = 16


def _ip_json(module, args):
    ip = module.get_bin_path("ip", required=True)
    rc, out, err = module.run_command([ip, "-j"] + args)
    if rc != 0:
        module.fail_json(msg="'ip -j %s' failed: %s" % (" ".join(args), err.strip()))
    return json.loads(out or "[]")


def _version_of(module, path, args):
    """First line of `path args` (a version), or None when there is no such binary or it failed."""
    if not path:
        return None
    rc, out, dummy = module.run_command([path] + args)
    lines = out.strip().splitlines() if rc == 0 else []
    return lines[0].strip() if lines else None


def _tcp_answers(vip, port, timeout):
    try:
        with socket.create_connection((vip, port), timeout=timeout):
            return True
    except ConnectionRefusedError:
        return True
    except OSError as exc:
        return exc.errno == errno.ECONNREFUSED


def _arp_probe(module, arping, address, interface, timeout):
    """(answered, Ethernet address of the answer): answered is None when the probe could not run."""
    # Duplicate address detection: exit 0 = nobody answered, 1 = some machine holds the address.
    deadline = max(2, int(round(timeout + 0.5)))
    rc, out, err = module.run_command([arping, "-D", "-c", "2", "-w", str(deadline), "-I", interface, address])
    if rc not in (0, 1):
        module.warn("arping on %s failed (%s): %s was not probed with ARP." % (interface, err.strip(), address))
        return None, None
    return rc == 1, _preflight.arping_reply_mac(out) if rc == 1 else None


def _ndp_probe(module, address, interface, timeout):
    try:
        with open("/sys/class/net/%s/address" % interface) as link_address:
            mac = link_address.read().strip()
        holder = _ndp.holder(address, interface, max(timeout, 1.0), mac)
    except (OSError, ValueError) as error:
        module.warn("Neighbor Discovery on %s failed (%s): %s was not probed with NDP." % (interface, error, address))
        return None, None
    return holder is not None, holder


def _link_prober(module, interface, timeout):
    """A function address -> (answered, Ethernet address): ARP for IPv4, Neighbor Discovery for IPv6."""
    arping = module.get_bin_path("arping")
    warned = []

    def probe(address):
        if _preflight.parse_address(address).version == 6:
            return _ndp_probe(module, address, interface, timeout)
        if not arping:
            if not warned:
                warned.append(True)
                module.warn("arping (iputils-arping) not found: IPv4 addresses were not probed with ARP, only the "
                            "VIP with TCP.")
            return None, None
        return _arp_probe(module, arping, address, interface, timeout)
    return probe


def _services_answers(module, probe, addresses, left_out):
    """{address: Ethernet address of the answer ('' when unknown)} of the Service addresses that answered."""
    if left_out:
        module.warn("Only the first %d addresses of kube_vip_services_addresses were probed (%d more were not): a "
                    "machine that holds one of those is not found before kube-vip announces it."
                    % (len(addresses), left_out))
    if not addresses:
        return {}
    with ThreadPoolExecutor(max_workers=min(len(addresses), SERVICES_PROBE_WORKERS)) as pool:
        outcomes = list(pool.map(probe, addresses))
    return dict((address, mac or "") for address, (answered, mac) in zip(addresses, outcomes) if answered)


def _processes():
    """(pid, argv) of every process of the node, from /proc."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as cmdline:
                data = cmdline.read()
        except OSError:  # gone meanwhile
            continue
        yield int(entry), [arg.decode("utf-8", "replace") for arg in data.split(b"\0") if arg]


def _wait_for_kubeadm(module, timeout):
    """Wait for a kubeadm init/join/reset still running on the node; (still running, seconds waited)."""
    started = time.monotonic()
    running = _preflight.running_kubeadm(_processes())
    first = running
    while running and time.monotonic() - started < timeout:
        time.sleep(1.0)
        running = _preflight.running_kubeadm(_processes())
    waited = round(time.monotonic() - started, 1)
    if first:
        module.warn("%s was still running on this node (left by a run that stopped half-way): %s after %.1f s."
                    % (", ".join("%s (PID %d)" % (cmd, pid) for pid, cmd in first),
                       "still running" if running else "it ended", waited))
    return ["%s (PID %d)" % (cmd, pid) for pid, cmd in running], waited


def main():
    module = AnsibleModule(
        argument_spec=dict(
            vip=dict(type="str"),
            port=dict(type="int", default=6443),
            interface=dict(type="str"),
            probe_arp=dict(type="bool", default=False),
            services_addresses=dict(type="list", elements="str", default=[]),
            timeout=dict(type="float", default=1.5),
            kubeadm_timeout=dict(type="float", default=300),
        ),
        supports_check_mode=True,
    )
    params = module.params
    # First: the files of a node whose kubeadm init or join still runs are not its state yet.
    kubeadm_running, kubeadm_waited = _wait_for_kubeadm(module, params["kubeadm_timeout"])
    links = _ip_json(module, ["addr", "show"])
    interfaces = _preflight.parse_ip_addr_json(links)
    default_iface = _preflight.default_interface(_ip_json(module, ["route", "show", "default"]))
    present = [path for path in _preflight.KUBEADM_FILES if os.path.isfile(path)]
    kubeadm = module.get_bin_path("kubeadm", opt_dirs=BIN_DIRS)
    apiserver_manifest = _kubeadm_state.read_text("/", _kubeadm_state.APISERVER_MANIFEST)
    apiserver_address, apiserver_port = _half_init.local_api_endpoint(apiserver_manifest)
    result = dict(
        changed=False,
        hostname=socket.gethostname().lower(),
        interfaces=interfaces,
        default_interface=default_iface,
        kubeadm_path=kubeadm,
        kubeadm_version=_version_of(module, kubeadm, ["version", "-o", "short"]),
        kubelet_version=_version_of(module, module.get_bin_path("kubelet", opt_dirs=BIN_DIRS), ["--version"]),
        api_server_version=_half_init.api_server_version(apiserver_manifest),
        api_server_endpoint=dict(address=apiserver_address, port=apiserver_port) if apiserver_address else None,
        kubeadm_files=present,
        cluster_state=_preflight.classify_state(present),
        vip_tcp_answers=False,
        vip_arp_answers=None,
        interface_macs=_preflight.parse_link_macs(links),
        services_answers={},
        kubelet_enabled=bool(glob.glob("/etc/systemd/system/*.wants/kubelet.service")),
        kubeadm_running=kubeadm_running,
        kubeadm_waited=kubeadm_waited,
    )
    iface = params["interface"] or default_iface
    probe = _link_prober(module, iface, params["timeout"]) if params["probe_arp"] and iface in interfaces else None
    services = None
    if probe is not None and params["services_addresses"]:
        # Every run, also on a node with a cluster: an answer from a node's own interface is kube-vip holding a
        # Service address, which module_utils/_preflight tells from another machine by the Ethernet address.
        addresses, left_out = _preflight.services_probe_addresses(params["services_addresses"])
        services = {}
        services_thread = threading.Thread(
            target=lambda: services.update(_services_answers(module, probe, addresses, left_out)))
        services_thread.start()
    vip = params["vip"]
    if vip and _preflight.parse_address(vip) is not None:
        # ARP (NDP) only decides anything when every node is bare and TCP found nobody (module_utils/_preflight):
        # skip its 2 s wait on a node that already has a cluster; on a bare node it runs while TCP probes.
        arp = None
        if probe is not None and result["cluster_state"] == _preflight.STATE_NONE:
            arp = {}
            arp_thread = threading.Thread(target=lambda: arp.update(answers=probe(vip)[0]))
            arp_thread.start()
        result["vip_tcp_answers"] = _tcp_answers(vip, params["port"], params["timeout"])
        if arp is not None:
            arp_thread.join()
            result["vip_arp_answers"] = arp.get("answers")
    if services is not None:
        services_thread.join()
        result["services_answers"] = services
    module.exit_json(**result)


if __name__ == "__main__":
    main()
