"""Measure the VIP failover of the simulator: bootstrap 3 nodes by hand, then N times power off the
kube-vip leader and time until the VIP is on another node and the API answers through it.

Run as root from the repository root: ``.venv/bin/python lab/tests/measure_sim_failover.py [N]``.
Prints one line per run and the median and maximum. The node is powered on again between runs.
"""

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_sim_api_support as support  # noqa: E402
import test_sim_bootstrap as bootstrap  # noqa: E402
from lab import Lab  # noqa: E402
from lab.slices import claim_slice  # noqa: E402  (claims a lab slice like the tests do)


def main(runs):
    claim, name, subnet, state_dir = claim_slice(3, 0)
    lab = Lab(name=name, state_dir=state_dir, subnet=subnet, control_planes=3, workers=0,
              kubernetes_version="1.32.4", time_scale=1.0, runtime="simulator")
    try:
        lab.up()
        started = time.monotonic()
        init = bootstrap.init_first(lab, "/etc/kubernetes/super-admin.conf")
        assert init.returncode == 0, init.stdout + init.stderr
        bootstrap.switch_kube_vip_to_admin_conf(lab, lab.nodes[0])
        for node in lab.nodes[1:]:
            bootstrap.join_control_plane(lab, node)
            bootstrap.write(lab, node, bootstrap.MANIFEST, bootstrap.kube_vip_manifest(lab.vip, "/etc/kubernetes/admin.conf"))
        print(f"bootstrap: {time.monotonic() - started:.1f} s", flush=True)
        client = bootstrap.AdminClient(lab, lab.nodes[0])
        vip_times, api_times = [], []
        for run in range(runs):
            support.wait_for(lambda: len(bootstrap.vip_holders(lab)) == 1, 60, what="one VIP holder")
            leader = bootstrap.vip_holders(lab)[0]
            stopped = time.monotonic()
            lab.stop(leader)
            support.wait_for(lambda: len(bootstrap.vip_holders(lab)) == 1, 30, interval=0.02, what="VIP moved")
            vip_times.append(time.monotonic() - stopped)
            support.wait_for(lambda: client.get("/readyz", lab.vip, timeout=0.5)[0] == 200, 30, interval=0.02,
                             what="API through the VIP")
            api_times.append(time.monotonic() - stopped)
            print(f"run {run + 1}: {leader} -> {bootstrap.vip_holders(lab)[0]}: VIP {vip_times[-1]:.2f} s, "
                  f"API {api_times[-1]:.2f} s", flush=True)
            lab.start(leader)  # a reboot: the VIP the killed kube-vip never removed is gone
            # Back to three healthy members before the next run (etcd quorum, kube-vip follower).
            support.wait_for(lambda: bootstrap.sh(lab, leader, f"{bootstrap.ETCDCTL} endpoint health --cluster",
                                                  check=False).returncode == 0, 120, interval=0.5,
                             what=f"{leader} back")
        for label, values in (("VIP on another node", vip_times), ("API answers through the VIP", api_times)):
            print(f"{label}: median {statistics.median(values):.2f} s, max {max(values):.2f} s over {runs} runs")
    finally:
        lab.down()
        claim.unlink(missing_ok=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
