#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: bundle_plan
short_description: Say which binaries and images of an air-gapped bundle a node lacks
version_added: 0.1.0
description:
  - Compares a node with the manifest of an air-gapped bundle (as M(vipadm.kubeadm.bundle_verify) returns
    it) and returns what the node lacks - the binaries to copy into O(bin_dir) (absent, another SHA-256, or not
    mode 0755) and the image archives to import (any of their references not listed by
    C(ctr -n k8s.io images ls -q)).
  - When containerd does not answer (not installed or not running yet, as on a fresh node in check mode),
    every image counts as lacking and RV(containerd_answered) is false.
  - Used by the C(vipadm.kubeadm.node_prep) role in bundle mode, so that a re-run copies and imports nothing.
author:
  - vipadm developers (@vipadm)
options:
  manifest:
    description: The bundle's manifest, RV(vipadm.kubeadm.bundle_verify#module:manifest).
    type: dict
    required: true
  bin_dir:
    description: The directory the binaries are installed in.
    type: path
    default: /usr/local/bin
extends_documentation_fragment:
  - vipadm.kubeadm.read_only
notes:
  - Reads the binaries and runs C(ctr -n k8s.io images ls -q).
seealso:
  - module: vipadm.kubeadm.bundle_verify
  - module: vipadm.kubeadm.bundle_import
"""

EXAMPLES = r"""
- name: Find what this node lacks of the bundle
  vipadm.kubeadm.bundle_plan:
    manifest: "{{ bundle.manifest }}"
    bin_dir: /usr/local/bin
  register: bundle_node

- name: Copy the binaries it lacks
  ansible.builtin.copy:
    src: "/srv/bundles/k8s-1.37.2/{{ item.path }}"
    dest: "/usr/local/bin/{{ item.name }}"
    mode: "0755"
  loop: "{{ bundle_node.binaries }}"
"""

RETURN = r"""
binaries:
  description: The binary entries of the manifest to copy (C(path), C(name), C(sha256)).
  returned: success
  type: list
  elements: dict
  sample: [{path: bin/kubelet, kind: binary, name: kubelet, sha256: 49a4167c801a960b90283e1a5c47f87c3c40cc838cfb7bdc6e0e1325dd330207}]
images:
  description: The image entries of the manifest to import, each with C(missing), the references containerd lacks.
  returned: success
  type: list
  elements: dict
  sample:
    - path: images/pause-3.10.2.tar
      kind: image
      references: [registry.k8s.io/pause:3.10.2]
      missing: [registry.k8s.io/pause:3.10.2]
      sha256: 591abcb061eeedd1a0b724166b322e58cba1b85825b32cccd86e827358e3a7b9
containerd_answered:
  description: Whether containerd listed its images; false means every image counts as lacking.
  returned: success
  type: bool
  sample: true
"""

import json

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vipadm.kubeadm.plugins.module_utils._bundle import call_or_fail, parse_manifest
from ansible_collections.vipadm.kubeadm.plugins.module_utils._bundle_host import plan_node


def main():
    module = AnsibleModule(
        argument_spec=dict(
            manifest=dict(type="dict", required=True),
            bin_dir=dict(type="path", default="/usr/local/bin"),
        ),
        supports_check_mode=True,
    )
    manifest = call_or_fail(module, parse_manifest, json.dumps(module.params["manifest"]))
    result = plan_node(manifest, module.params["bin_dir"], module.run_command, module.get_bin_path("ctr"))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
