#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: bundle_verify
short_description: Check an air-gapped bundle on the controller before any node changes
version_added: 0.1.0
description:
  - Reads the C(bundle.json) of an air-gapped bundle directory (format 1, see docs/air-gapped.md) and checks
    that it can install the cluster - the Kubernetes version, the binaries kubeadm, kubelet and kubectl,
    every image kubeadm of that version runs (kube-apiserver, kube-controller-manager, kube-scheduler and
    kube-proxy of the release, an etcd and a CoreDNS image, the pause image containerd's configuration
    names) and the kube-vip image the kube-vip manifest names.
  - Hashes every file of the bundle (SHA-256, read in 1 MiB chunks) and compares it with C(bundle.json) and
    C(SHA256SUMS).
  - Fails with one sentence per problem, naming the file or image reference and what to do.
  - "Runs on the controller (C(delegate_to: localhost), C(run_once)) in the C(vipadm.kubeadm.node_prep) role
    before any node changes; returns the parsed manifest."
author:
  - vipadm developers (@vipadm)
options:
  path:
    description: The bundle directory, the one holding C(bundle.json), C(SHA256SUMS), C(bin/) and C(images/).
    type: path
    required: true
extends_documentation_fragment:
  - vipadm.kubeadm.bundle
  - vipadm.kubeadm.read_only
notes:
  - Every run hashes every file (about a second per GiB when the files are in the page cache).
seealso:
  - module: vipadm.kubeadm.bundle_build
  - module: vipadm.kubeadm.bundle_plan
"""

EXAMPLES = r"""
- name: Check the bundle before any node changes
  vipadm.kubeadm.bundle_verify:
    path: /srv/bundles/k8s-1.37.2
    kubernetes_version: 1.37.2
  delegate_to: localhost
  run_once: true
  register: bundle
"""

RETURN = r"""
manifest:
  description: The parsed C(bundle.json).
  returned: success
  type: dict
  sample:
    format: 1
    kubernetes_version: 1.37.2
    kube_vip_version: v1.2.3
    architecture: amd64
    files:
      - {path: bin/kubeadm, kind: binary, name: kubeadm, sha256: 04d808a62c5ba5d783fea0e473efba7dc5586baa270ce0c03ea58aec69e4efd0}
      - {path: images/pause-3.10.2.tar, kind: image, references: [registry.k8s.io/pause:3.10.2],
         sha256: 591abcb061eeedd1a0b724166b322e58cba1b85825b32cccd86e827358e3a7b9}
required_images:
  description:
    - The images the cluster runs, each with C(name) and the exact C(reference) or, for etcd and CoreDNS
      (whose tags kubeadm chooses per patch release), the C(repository).
  returned: success
  type: list
  elements: dict
  sample:
    - {name: kube-apiserver, reference: "registry.k8s.io/kube-apiserver:v1.37.2"}
    - {name: etcd, repository: registry.k8s.io/etcd}
problems:
  description: One sentence per problem.
  returned: failure
  type: list
  elements: str
  sample: ["images/etcd-3.6.8-0.tar does not match its sha256 in bundle.json (expected ..., found ...): ..."]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vipadm.kubeadm.plugins.module_utils._bundle import (
    CLUSTER_ARGUMENT_SPEC,
    call_or_fail,
    cluster_settings,
    required_images,
)
from ansible_collections.vipadm.kubeadm.plugins.module_utils._bundle_host import verify_bundle


def main():
    module = AnsibleModule(
        argument_spec=dict(CLUSTER_ARGUMENT_SPEC, path=dict(type="path", required=True)),
        supports_check_mode=True,
    )
    params = module.params
    cluster = cluster_settings(params)
    manifest = call_or_fail(module, verify_bundle, params["path"], params["kubernetes_version"], **cluster)
    wanted = required_images(params["kubernetes_version"], **cluster)
    module.exit_json(changed=False, manifest=manifest,
                     required_images=[dict((key, item[key]) for key in item if key != "why") for item in wanted])


if __name__ == "__main__":
    main()
