#!/usr/bin/env python3
"""Ansible inventory script: the inventory of the scenario's lab (written by `python -m lab up`
into <state>/inventory), or an empty one before create. Molecule needs an inventory source that
exists before the lab does, hence this script instead of a link to the generated files."""
import json
import os
import sys

import yaml

STATE = os.path.join(os.environ.get("MOLECULE_PROJECT_DIRECTORY",
                                    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")),
                     ".molecule", "lab", "inventory")


def load(path):
    try:
        with open(path) as f:
            return yaml.safe_load(f) or {}
    except FileNotFoundError:
        return {}


def main():
    if "--host" in sys.argv:
        print("{}")
        return
    tree = load(os.path.join(STATE, "hosts.yml")).get("all") or {}
    result = {"_meta": {"hostvars": {}}, "all": {"vars": dict(tree.get("vars") or {}), "children": []}}
    result["all"]["vars"].update(load(os.path.join(STATE, "group_vars", "all.yml")))
    for group, body in (tree.get("children") or {}).items():
        hosts = (body or {}).get("hosts") or {}
        result[group] = {"hosts": list(hosts)}
        result["all"]["children"].append(group)
        for host, hostvars in hosts.items():
            result["_meta"]["hostvars"][host] = hostvars or {}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
