# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Kubernetes releases vipadm supports, in one place for preflight, node_prep and the kubeadm modules.

Every minor in the range has its configs checked by that minor's real kubeadm in the tests
(tests/integration/test_kubeadm_config_validate.py).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

SUPPORTED_KUBERNETES_MINORS = (29, 37)  # Kubernetes 1.29 .. 1.37
SUPPORTED_KUBERNETES_TEXT = "1.%d to 1.%d" % SUPPORTED_KUBERNETES_MINORS

# kubeadm's version skew rules, the same in every supported minor (cmd/kubeadm/app/constants of 1.29-1.37:
# MinimumControlPlaneVersion = kubeadm's minor - 1, MinimumKubeletVersion = kubeadm's minor - 3; its preflight
# refuses a Kubernetes version newer than itself and a kubelet newer than the control plane).
KUBEADM_OLDEST_CONTROL_PLANE_SKEW = 1
KUBEADM_OLDEST_KUBELET_SKEW = 3


_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+].*)?$")


def parse_version(text):
    """'1.32.4', 'v1.32' -> (1, 32, 4) / (1, 32, 0); None when it is not a version."""
    match = _VERSION_RE.match(str(text).strip()) if text is not None else None
    if not match:
        return None
    return (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


def parse_release(text):
    """parse_version of the last word: 'v1.36.3', '1.36.3' or 'Kubernetes v1.36.3' (kubelet --version)."""
    words = str(text or "").split()
    return parse_version(words[-1]) if words else None


def skew_errors(node, kubernetes_version, kubeadm_version=None, kubelet_version=None):
    """Sentences for a node whose installed kubeadm or kubelet cannot serve Kubernetes kubernetes_version.

    The versions are what the node reports ('v1.36.3', 'Kubernetes v1.36.3'); None (not installed, or not
    read) checks nothing: node_prep installs the right ones.
    """
    target = parse_release(kubernetes_version)
    kubeadm = parse_release(kubeadm_version)
    kubelet = parse_release(kubelet_version)
    if target is None:
        return []
    errors = []
    fix = "install the %d.%d release (the node_prep role installs vipadm_kubernetes_version)" % target[:2]
    if kubeadm is not None:
        oldest = (kubeadm[0], kubeadm[1] - KUBEADM_OLDEST_CONTROL_PLANE_SKEW)
        if target[:2] > kubeadm[:2]:
            errors.append("%s: kubeadm %s is older than Kubernetes %s, and kubeadm refuses to deploy a newer "
                          "Kubernetes than itself: %s, or set vipadm_kubernetes_version to a %d.%d or %d.%d release."
                          % (node, kubeadm_version, kubernetes_version, fix, oldest[0], oldest[1] + 1,
                             oldest[0], oldest[1]))
        elif target[:2] < oldest:
            errors.append("%s: kubeadm %s deploys Kubernetes %d.%d and %d.%d only, not %s: %s." % (
                node, kubeadm_version, kubeadm[0], kubeadm[1], oldest[0], oldest[1], kubernetes_version, fix))
    if kubelet is not None:
        if kubelet[:2] > target[:2]:
            errors.append("%s: kubelet %s is newer than Kubernetes %s, and a kubelet may not be newer than its "
                          "control plane: %s." % (node, kubelet_version.split()[-1], kubernetes_version, fix))
        elif kubeadm is not None and kubelet[:2] < (kubeadm[0], kubeadm[1] - KUBEADM_OLDEST_KUBELET_SKEW):
            errors.append("%s: kubelet %s is older than kubeadm %s supports (%d.%d and newer): %s." % (
                node, kubelet_version.split()[-1], kubeadm_version, kubeadm[0],
                kubeadm[1] - KUBEADM_OLDEST_KUBELET_SKEW, fix))
    return errors
