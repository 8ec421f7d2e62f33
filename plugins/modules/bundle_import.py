#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: bundle_import
short_description: Import the image archives of an air-gapped bundle that containerd lacks
version_added: 0.1.0
description:
  - For each image entry of an air-gapped bundle whose references C(ctr -n k8s.io images ls -q) does not all
    list, runs C(ctr -n k8s.io images import <archive_dir>/<archive>), then checks that containerd lists every
    reference. An image containerd lists already is not imported again.
  - Fails with a sentence when containerd does not answer, an archive is not in O(archive_dir), ctr refuses
    it, or containerd does not list a reference after the import (the archive names the image otherwise).
  - Used by the C(vipadm.kubeadm.node_prep) role in bundle mode after it copied the archives
    M(vipadm.kubeadm.bundle_plan) listed.
author:
  - vipadm developers (@vipadm)
options:
  images:
    description:
      - The image entries of the bundle's manifest (C(path), C(references)), such as
        RV(vipadm.kubeadm.bundle_plan#module:images).
    type: list
    elements: dict
    required: true
  archive_dir:
    description: The directory on the node that holds the archives, under their file names.
    type: path
    required: true
attributes:
  check_mode:
    support: full
    description: Lists containerd's images and reports the imports it would run; imports nothing.
  diff_mode:
    support: none
    description: No file changes.
  platform:
    support: full
    platforms: posix
    description: Runs on Linux nodes with containerd.
seealso:
  - module: vipadm.kubeadm.bundle_plan
"""

EXAMPLES = r"""
- name: Import the images containerd lacks
  vipadm.kubeadm.bundle_import:
    images: "{{ bundle_node.images }}"
    archive_dir: /var/cache/vipadm/images
"""

RETURN = r"""
imported:
  description: The archives imported (in check mode, those that would be), as bundle paths.
  returned: success
  type: list
  elements: str
  sample: [images/kube-apiserver-v1.37.2.tar, images/pause-3.10.2.tar]
references:
  description: The references those archives gave containerd.
  returned: success
  type: list
  elements: str
  sample: ["registry.k8s.io/kube-apiserver:v1.37.2", "registry.k8s.io/pause:3.10.2"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vipadm.kubeadm.plugins.module_utils._bundle import call_or_fail
from ansible_collections.vipadm.kubeadm.plugins.module_utils._bundle_host import import_images


def main():
    module = AnsibleModule(
        argument_spec=dict(
            images=dict(type="list", elements="dict", required=True),
            archive_dir=dict(type="path", required=True),
        ),
        supports_check_mode=True,
    )
    imported = call_or_fail(module, import_images, module.params["images"], module.params["archive_dir"],
                            module.run_command, module.get_bin_path("ctr"), check_mode=module.check_mode)
    module.exit_json(changed=bool(imported), imported=[entry["path"] for entry in imported],
                     references=[ref for entry in imported for ref in entry["references"]])


if __name__ == "__main__":
    main()
