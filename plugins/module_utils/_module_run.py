# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The main() of the thin day-2 modules: the module, its binary, the flow, the result or the failure."""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.vipadm.kubeadm.plugins.module_utils import _kubeadm_actions as actions


def warned(module, flow):
    """``flow`` whose ``warnings`` go through ``module.warn`` (exit_json's own ``warnings`` is deprecated)."""
    def wrapped(*args, **kwargs):
        result = flow(*args, **kwargs)
        for warning in result.pop('warnings', None) or []:
            module.warn(warning)
        return result
    return wrapped


def main(argument_spec, flow, root, binary=None, check_mode=False):
    """Run ``flow(params, root, run[, the path of the binary named by option ``binary``][, check_mode])`` and exit
    with its result; a KubeadmError (and its subclasses) fails the module with its sentence."""
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    args = []
    if binary:
        args.append(module.get_bin_path(module.params[binary], required=True))
    if check_mode:
        args.append(module.check_mode)
    actions.run_in_module(module, warned(module, flow), root, *args)
