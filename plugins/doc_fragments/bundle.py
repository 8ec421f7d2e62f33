# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cluster settings an air-gapped bundle is checked against (bundle_verify, bundle_build)."""

from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    DOCUMENTATION = r"""
options:
  kubernetes_version:
    description: The cluster's Kubernetes release, such as C(1.37.2); the bundle holds that release.
    type: str
    required: true
  image_repository:
    description: The registry of kubeadm's images (its C(imageRepository)).
    type: str
    default: registry.k8s.io
  pause_image:
    description: The pause image containerd is configured with. Default is that of the Kubernetes version.
    type: str
  kube_vip_version:
    description: The kube-vip release of the cluster's kube-vip manifest.
    type: str
    default: v1.2.3
  kube_vip_image:
    description:
      - The kube-vip image of the manifest (the kube_vip role's C(kube_vip_image)); untagged, it gets
        O(kube_vip_version) as tag. Default is C(ghcr.io/kube-vip/kube-vip).
    type: str
"""
