# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kubelet options shared by the modules that run kubeadm init and join."""

from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    DOCUMENTATION = r"""
options:
  enable_kubelet:
    description:
      - Enable the kubelet unit (C(systemctl enable kubelet)) when it is not, before kubeadm runs.
      - kubeadm starts the kubelet but never enables it (its preflight only warns), so without this the node does
        not come back after a reboot. Also done on a node that needs no kubeadm run.
      - A masked unit is refused with what to do.
    type: bool
    default: false
  node_ip:
    description:
      - The addresses the kubelet reports for its Node (the kubelet's C(--node-ip), written into
        C(nodeRegistration.kubeletExtraArgs)), one address or an IPv4 and an IPv6 one for dual stack. The kubelet
        picks one itself when empty (the IPv4 address of the default route when there is one), which an IPv6-only
        cluster cannot use.
      - Refused together with C(node-ip) in the kubelet's extra arguments.
    type: list
    elements: str
    default: []
"""
