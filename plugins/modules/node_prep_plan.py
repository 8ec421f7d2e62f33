#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: node_prep_plan
short_description: Decide what node preparation installs on a node for a Kubernetes version
version_added: 0.1.0
description:
  - Reads the node's C(/etc/os-release) and returns, for the Kubernetes version given, the package
    manager, the Kubernetes package repository of that minor version, where containerd comes from,
    the pinned package specs, the pause image that kubeadm of that version expects, how that version
    runs on containerd 1.x and the directory of the CNI plugins.
  - Refuses, without changing anything, a Kubernetes version outside 1.29 to 1.37 or a platform
    other than Debian 12, Ubuntu 22.04/24.04 and RHEL-family 9.
  - With O(bundle) (bundle mode), also refuses a node of another architecture than the bundle's, a pause image
    the bundle does not hold and, with O(require_containerd), a node without containerd.
  - Used by the C(vipadm.kubeadm.node_prep) role before it changes anything.
author:
  - vipadm developers (@vipadm)
options:
  kubernetes_version:
    description: The Kubernetes release the node gets, such as C(1.32.4) (a leading C(v) is accepted).
    type: str
    required: true
  image_repository:
    description: The registry kubeadm pulls its images from (its C(imageRepository)).
    type: str
    default: registry.k8s.io
  pause_image:
    description: Use this sandbox image instead of the pause image of the Kubernetes version.
    type: str
  kubernetes_repository_url:
    description:
      - URL of a mirror of the pkgs.k8s.io repository of this minor version (the directory holding
        C(Release.key) for apt or C(repodata/) for dnf). Default is pkgs.k8s.io itself.
    type: str
  containerd_source:
    description:
      - C(distribution) installs the distribution's C(containerd) package, C(docker) the
        C(containerd.io) package from Docker's repository.
      - Default is C(docker) on RHEL-family 9 (no distribution package) and for Kubernetes 1.36 and
        later (whose kubelet deprecates containerd 1.x; 1.38 needs containerd 2), C(distribution)
        otherwise.
    type: str
    choices: [distribution, docker]
  containerd_repository_url:
    description:
      - URL of a mirror of Docker's C(linux/<distro>) repository tree, used when containerd comes
        from Docker. Default is C(https://download.docker.com/linux/<distro>).
    type: str
  cni_bin_dir:
    description:
      - The directory of the CNI plugin binaries containerd runs, an absolute path. A relative path is
        refused.
      - Default is containerd's own default C(/opt/cni/bin).
    type: str
  bundle:
    description:
      - The manifest of the air-gapped bundle the node is prepared from,
        RV(vipadm.kubeadm.bundle_verify#module:manifest). Its architecture must be the node's, and it must hold
        the pause image.
    type: dict
  require_containerd:
    description:
      - Refuse a node without containerd (bundle mode where node_prep does not install packages). Only with
        O(bundle).
    type: bool
    default: false
extends_documentation_fragment:
  - vipadm.kubeadm.read_only
notes:
  - Reads C(/etc/os-release), the machine name and, with O(require_containerd), looks for containerd.
"""

EXAMPLES = r"""
- name: Plan the node preparation for Kubernetes 1.32.4
  vipadm.kubeadm.node_prep_plan:
    kubernetes_version: 1.32.4
  register: node_plan

- name: Show the pause image containerd gets
  ansible.builtin.debug:
    msg: "{{ node_plan.pause_image }}"   # registry.k8s.io/pause:3.10
"""

RETURN = r"""
kubernetes_version:
  description: The version, normalized (no leading C(v)).
  returned: success
  type: str
  sample: 1.32.4
kubernetes_minor:
  description: The minor version, which selects the package repository.
  returned: success
  type: str
  sample: "1.32"
platform:
  description: The node's platform as recognized from os-release.
  returned: success
  type: dict
  sample: {family: debian, id: debian, version_id: "12", codename: bookworm, package_manager: apt, docker_distro: debian}
package_manager:
  description: C(apt) or C(dnf).
  returned: success
  type: str
  sample: apt
pause_image:
  description: The sandbox image containerd is configured with.
  returned: success
  type: str
  sample: registry.k8s.io/pause:3.10
kubernetes_repository:
  description: The Kubernetes package repository (C(url)) and its signing key (C(key_url)).
  returned: success
  type: dict
  sample: {url: "https://pkgs.k8s.io/core:/stable:/v1.32/deb/", key_url: "https://pkgs.k8s.io/core:/stable:/v1.32/deb/Release.key"}
kubernetes_packages:
  description: kubelet, kubeadm and kubectl pinned to the version, in the package module's syntax.
  returned: success
  type: list
  elements: str
  sample: ["kubelet=1.32.4-*", "kubeadm=1.32.4-*", "kubectl=1.32.4-*"]
held_packages:
  description: Packages held at their version (apt-mark hold, or excluded from the dnf repository).
  returned: success
  type: list
  elements: str
  sample: [kubelet, kubeadm, kubectl]
containerd_source:
  description: C(distribution) or C(docker).
  returned: success
  type: str
  sample: distribution
containerd_package:
  description: The containerd package name.
  returned: success
  type: str
  sample: containerd
containerd_repository:
  description: Docker's repository (C(url), C(key_url), apt C(suite) and C(component)); null for the distribution package.
  returned: success
  type: dict
  sample: {url: "https://download.docker.com/linux/debian", key_url: "https://download.docker.com/linux/debian/gpg", suite: bookworm, component: stable}
containerd_1_support:
  description:
    - How this Kubernetes version runs on containerd 1.x. C(full) up to 1.35; C(fallback) for 1.36 and
      1.37 (the kubelet warns that containerd 1.x lacks the CRI RuntimeConfig call and uses its own
      C(cgroupDriver)); C(none) from 1.38 (containerd 2 needed).
  returned: success
  type: str
  sample: full
cni_bin_dir:
  description: The directory of the CNI plugin binaries, normalized (no trailing slash).
  returned: success
  type: str
  sample: /opt/cni/bin
architecture:
  description: The node's architecture as Go and the release downloads name it (C(uname -m) C(x86_64) is C(amd64)).
  returned: success
  type: str
  sample: amd64
bundle_packages:
  description:
    - The distribution packages bundle mode installs when it installs packages - containerd and what the
      Kubernetes packages would otherwise pull in (conntrack, iptables, iproute, ethtool, socat).
  returned: success
  type: list
  elements: str
  sample: [containerd.io, conntrack, iptables, iproute2, ethtool, socat]
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.vipadm.kubeadm.plugins.module_utils._bundle import (
    call_or_fail,
    go_architecture,
    node_problems,
    parse_manifest,
)
from ansible_collections.vipadm.kubeadm.plugins.module_utils._node_prep import NodePrepError, plan

OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")


def read_os_release():
    for path in OS_RELEASE_PATHS:
        try:
            with open(path) as handle:
                return handle.read()
        except (IOError, OSError):
            continue
    return ""


def machine():
    """The node's machine name, as `uname -m` prints it."""
    return os.uname()[4]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            kubernetes_version=dict(type="str", required=True),
            image_repository=dict(type="str", default="registry.k8s.io"),
            pause_image=dict(type="str"),
            kubernetes_repository_url=dict(type="str"),
            containerd_source=dict(type="str", choices=["distribution", "docker"]),
            containerd_repository_url=dict(type="str"),
            cni_bin_dir=dict(type="str"),
            bundle=dict(type="dict"),
            require_containerd=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = plan(
            params["kubernetes_version"],
            read_os_release(),
            image_repository=params["image_repository"],
            pause_image_override=params["pause_image"],
            kubernetes_repository_url=params["kubernetes_repository_url"],
            containerd_source_override=params["containerd_source"],
            containerd_repository_url=params["containerd_repository_url"],
            cni_bin_dir_override=params["cni_bin_dir"],
        )
    except NodePrepError as error:
        module.fail_json(msg=str(error))
    node_machine = machine()
    result["architecture"] = go_architecture(node_machine)
    if params["bundle"] is not None:
        manifest = call_or_fail(module, parse_manifest, json.dumps(params["bundle"]))
        containerd_found = not params["require_containerd"] or bool(module.get_bin_path("containerd"))
        problems = node_problems(manifest, result["pause_image"], node_machine, containerd_found)
        if problems:
            module.fail_json(msg=" ".join(problems), problems=problems)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
