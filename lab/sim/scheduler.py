"""The simulated kube-scheduler: ``https://127.0.0.1:10259/livez`` (and /healthz, /readyz) and its
leader-election Lease; the lab has no Pods to schedule.
Run as ``python3 -m lab.sim.scheduler <the flags of kubeadm's manifest>``."""

import sys

from lab.sim.controller_manager import COMMON_BOOL_FLAGS, COMMON_VALUE_FLAGS, main as component_main

SCHEDULER_VALUE_FLAGS = COMMON_VALUE_FLAGS | {"config", "write-config-to", "pod-max-in-unschedulable-pods-duration"}


def main(argv=None):
    return component_main(argv, component="kube-scheduler", value_flags=SCHEDULER_VALUE_FLAGS,
                          bool_flags=COMMON_BOOL_FLAGS, default_port=10259)


if __name__ == "__main__":
    sys.exit(main())
