#!/usr/bin/env python3
"""Exit 0 when no route of this machine overlaps the VMs' networks (198.51.100.192/26, the top two /27 slices of the
lab range), other than the routes of the bridges named as arguments (the scenario's own networks on a re-run);
else one sentence on stderr naming the routes and exit 1. A namespace lab on those slices, or `python -m lab up`
(the whole /24), has such a route."""

import ipaddress
import json
import subprocess
import sys

VM_NETWORKS = ipaddress.ip_network("198.51.100.192/26")


def overlapping(routes, own_bridges):
    found = []
    for route in routes:
        destination = route.get("dst", "")
        if destination in ("default", "") or route.get("dev") in own_bridges:
            continue
        try:
            network = ipaddress.ip_network(destination, strict=False)
        except ValueError:
            continue
        if network.version == 4 and network.overlaps(VM_NETWORKS):
            found.append(f"{destination} dev {route.get('dev', '?')}")
    return found


def main(argv):
    routes = json.loads(subprocess.run(["ip", "-j", "-4", "route", "show", "table", "all"], capture_output=True,
                                       text=True, check=True).stdout or "[]")
    found = overlapping(routes, set(argv[1:]))
    if found:
        print(f"The VMs' networks {VM_NETWORKS} overlap routes of this machine ({', '.join(found)}): a namespace lab "
              "holds those slices of 198.51.100.0/24; run the scenario once it is down.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
