#!/usr/bin/env python3
"""Exit 0 when no route of this machine overlaps the VMs' networks (198.51.100.192/26, the top two /27 slices of the
lab range), other than the routes of the bridges named as arguments (the scenario's own networks on a re-run);
else one sentence on stderr naming the routes and exit 1. A namespace lab on those slices, or `python -m lab up`
(the whole /24), has such a route."""

import ipaddress
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lab.plan import overlapping_routes  # noqa: E402
from lab.slices import host_routes  # noqa: E402

VM_NETWORKS = ipaddress.ip_network("198.51.100.192/26")


def main(argv):
    own_bridges = set(argv[1:])
    found = overlapping_routes(VM_NETWORKS, [r for r in host_routes() if r.get("dev") not in own_bridges])
    if found:
        print(f"The VMs' networks {VM_NETWORKS} overlap routes of this machine ({', '.join(found)}): a namespace lab "
              "holds those slices of 198.51.100.0/24; run the scenario once it is down.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
