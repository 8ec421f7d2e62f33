#!/usr/bin/env python3
"""Molecule's instance configuration from `vagrant ssh-config`: one entry per VM with the address,
user, port and key that Ansible connects with. Reads ssh-config text on stdin, writes YAML to the
file named by the first argument."""
import sys

import yaml

FIELDS = {"HostName": "address", "User": "user", "Port": "port", "IdentityFile": "identity_file"}


def instances(ssh_config: str) -> list[dict]:
    result = []
    for line in ssh_config.splitlines():
        words = line.split(None, 1)
        if len(words) != 2:
            continue
        key, value = words
        if key == "Host":
            result.append({"instance": value})
        elif key in FIELDS and result:
            # Vagrant quotes paths that hold spaces.
            result[-1][FIELDS[key]] = value.strip('"')
    missing = [entry["instance"] for entry in result if set(FIELDS.values()) - set(entry)]
    if not result or missing:
        sys.exit(f"vagrant ssh-config gave no address for {missing or 'any VM'}; run `vagrant status` "
                 "in molecule/vagrant-libvirt to see which VM is not running.")
    return result


def main():
    with open(sys.argv[1], "w") as out:
        yaml.safe_dump(instances(sys.stdin.read()), out, default_flow_style=False)


if __name__ == "__main__":
    main()
