# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kubeadm's own waits, an option of the modules that run kubeadm init and join."""

from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    DOCUMENTATION = r"""
options:
  timeouts:
    description:
      - How long kubeadm waits, each a Go duration such as V(10m) or V(90s); kubeadm's defaults for those left out.
      - Written as the C(timeouts) of the C(InitConfiguration) or C(JoinConfiguration) (C(kubeadm.k8s.io/v1beta4),
        Kubernetes 1.31+). A wait the command does not have (C(discovery) for init) is harmless there.
      - Below Kubernetes 1.31 (C(v1beta3)) only O(timeouts.control_plane_component_health_check) (init, as
        C(apiServer.timeoutForControlPlane)) and O(timeouts.discovery) (join, as C(discovery.timeout)) exist; the
        others are refused.
      - Raise them on slow machines, where a control plane that would come up is given up on. For example
        software-emulated VMs need several times the defaults.
    type: dict
    suboptions:
      control_plane_component_health_check:
        description: Waiting for the API server, controller manager and scheduler to be healthy (kubeadm's default 4m).
        type: str
      kubelet_health_check:
        description: Waiting for the kubelet to be healthy (4m).
        type: str
      kubernetes_api_call:
        description: One call to the API server (1m).
        type: str
      etcd_api_call:
        description: One call to etcd, such as adding this node's member (2m).
        type: str
      tls_bootstrap:
        description: Waiting for the kubelet's TLS bootstrap (5m).
        type: str
      discovery:
        description: Finding and checking the cluster's CA and configuration through the API endpoint (5m).
        type: str
"""
