# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of the modules that call kubectl on a control plane."""

from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description: The kubeconfig C(kubectl) uses; its server is replaced by O(server).
    type: path
    default: /etc/kubernetes/admin.conf
  server:
    description: The API server to call, C(https://host:port); this control plane's own (the address and port of
      its C(kube-apiserver.yaml)) when empty.
    type: str
  kubectl_path:
    description: The kubectl binary, a name looked up in E(PATH) or an absolute path.
    type: str
    default: kubectl
"""
