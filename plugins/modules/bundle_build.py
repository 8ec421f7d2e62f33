#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: bundle_build
short_description: Fetch the images of an air-gapped bundle and write its bundle.json and SHA256SUMS
version_added: 0.1.0
description:
  - Runs on a connected machine, in a bundle directory whose C(bin/kubeadm), C(bin/kubelet) and C(bin/kubectl)
    are already there (the C(vipadm.kubeadm.bundle) playbook downloads them). Fetches each image with
    C(skopeo copy --override-os linux --override-arch <architecture> docker://<reference>
    docker-archive:<file>:<reference>) into C(images/<name>-<tag>.tar), then writes C(bundle.json) (format 1)
    and C(SHA256SUMS) (C(sha256sum -c) format).
  - The images are O(kubeadm_images) (what C(kubeadm config images list) of that release prints), the kube-vip
    image its manifest names (O(kube_vip_version), O(kube_vip_image)) and O(extra_images).
  - An archive an earlier run left, listed in the C(bundle.json) there with the same references and a matching
    SHA-256, is not fetched again; C(bundle.json) and C(SHA256SUMS) are written only when they change.
  - Checks the result as M(vipadm.kubeadm.bundle_verify) will, and writes nothing when it fails.
author:
  - vipadm developers (@vipadm)
options:
  path:
    description: The bundle directory.
    type: path
    required: true
  architecture:
    description: The architecture of the nodes, as Go names it (C(amd64), C(arm64), ...).
    type: str
    default: amd64
  kubeadm_images:
    description: The images kubeadm of that release runs, as C(kubeadm config images list) prints them.
    type: list
    elements: str
    required: true
  extra_images:
    description: More images to carry (a CNI, test images); imported on every node as well.
    type: list
    elements: str
    default: []
  extra_binaries:
    description:
      - More commands to carry, by name, already in C(bin/) (such as C(crictl), which kubeadm 1.29 and 1.30
        need); installed on every node next to kubeadm.
    type: list
    elements: str
    default: []
  skopeo:
    description: The skopeo command (a name looked up in C(PATH), or a path).
    type: str
    default: skopeo
  skopeo_options:
    description: More options for C(skopeo copy), such as C(--src-tls-verify=false) or C(--src-authfile=<file>).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - vipadm.kubeadm.bundle
attributes:
  check_mode:
    support: full
    description: Reports the images it would fetch and the files it would write; fetches and writes nothing.
  diff_mode:
    support: none
    description: The files written are listed in RV(written).
  platform:
    support: full
    platforms: posix
    description: Runs on the connected machine that builds the bundle.
requirements:
  - skopeo on the machine that builds the bundle, with access to the registries.
seealso:
  - module: vipadm.kubeadm.bundle_verify
"""

EXAMPLES = r"""
- name: Fetch the images and write bundle.json and SHA256SUMS
  vipadm.kubeadm.bundle_build:
    path: /srv/bundles/k8s-1.37.2
    kubernetes_version: 1.37.2
    kubeadm_images: "{{ kubeadm_list.stdout_lines }}"
    extra_images:
      - docker.io/calico/node:v3.29.1
"""

RETURN = r"""
fetched:
  description: The images fetched (in check mode, to fetch), as bundle paths.
  returned: success
  type: list
  elements: str
  sample: [images/kube-apiserver-v1.37.2.tar]
written:
  description: The files written (in check mode, to write) among C(bundle.json) and C(SHA256SUMS).
  returned: success
  type: list
  elements: str
  sample: [bundle.json, SHA256SUMS]
manifest:
  description: The bundle's C(bundle.json); null in check mode when an image would be fetched.
  returned: success
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vipadm.kubeadm.plugins.module_utils._bundle import (
    CLUSTER_ARGUMENT_SPEC,
    call_or_fail,
    cluster_settings,
)
from ansible_collections.vipadm.kubeadm.plugins.module_utils._bundle_host import build_bundle


def main():
    module = AnsibleModule(
        argument_spec=dict(
            CLUSTER_ARGUMENT_SPEC,
            path=dict(type="path", required=True),
            architecture=dict(type="str", default="amd64"),
            kubeadm_images=dict(type="list", elements="str", required=True),
            extra_images=dict(type="list", elements="str", default=[]),
            extra_binaries=dict(type="list", elements="str", default=[]),
            skopeo=dict(type="str", default="skopeo"),
            skopeo_options=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    result = call_or_fail(
        module, build_bundle, params["path"], params["kubernetes_version"], params["architecture"],
        params["kubeadm_images"], module.run_command, skopeo=module.get_bin_path(params["skopeo"]),
        skopeo_options=params["skopeo_options"], extra_images=params["extra_images"],
        extra_binaries=params["extra_binaries"], check_mode=module.check_mode, **cluster_settings(params)
    )
    module.exit_json(changed=bool(result["fetched"] or result["written"]), manifest=result["manifest"],
                     fetched=[entry["path"] for entry in result["fetched"]], written=result["written"])


if __name__ == "__main__":
    main()
