"""Entry point: dispatch kubeadm's sub-commands, print errors the way the version does, exit 1."""

import json
import sys

import yaml

from lab.sim import config as sim_config
from lab.sim.kubeadm import apiconfig, errors
from lab.sim.kubeadm.errors import KubeadmError
from lab.sim.kubeadm.flags import BOOL, STRING, check_mixed_arguments, parse
from lab.sim.kubeadm.runtime import Runtime

GO_VERSIONS = {29: "go1.21.13", 30: "go1.22.12", 31: "go1.23.8", 32: "go1.23.8", 33: "go1.24.2",
               34: "go1.24.6", 35: "go1.25.3", 36: "go1.25.8"}


def version_info(version):
    return {
        "major": str(version.major), "minor": str(version.minor), "gitVersion": str(version),
        "gitCommit": "0" * 40, "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": GO_VERSIONS.get(version.minor, "go1.25.8"), "compiler": "gc", "platform": "linux/amd64",
    }


def run_version(rt, argv):
    flags, args = parse(argv, {"output": (STRING, "", "o")})
    info = version_info(rt.version)
    fmt = flags["output"]
    if fmt == "":
        fields = ", ".join(f'{key[0].upper() + key[1:]}:"{value}"' for key, value in info.items())
        fields = fields.replace("GitVersion", "GitVersion").replace("GoVersion", "GoVersion")
        rt.say(f"kubeadm version: &version.Info{{{fields}}}")
    elif fmt == "short":
        rt.say(str(rt.version))
    elif fmt == "json":
        rt.say(json.dumps({"clientVersion": info}, indent=2))
    elif fmt == "yaml":
        rt.out.write(yaml.safe_dump({"clientVersion": info}, default_flow_style=False, sort_keys=False))
    else:
        raise KubeadmError(f"invalid output format: {fmt}")
    return 0


def run_config_validate(rt, argv):
    flags, args = parse(argv, {"config": (STRING, "", None), "allow-experimental-api": (BOOL, "false", None),
                               "kubeconfig": (STRING, "/etc/kubernetes/admin.conf", None)})
    if not flags["config"]:
        raise KubeadmError("the --config flag is mandatory")
    from lab.sim.kubeadm.init_cmd import read_config_file
    found, warnings = apiconfig.split_documents(read_config_file(flags["config"]), rt.version)
    for warning in warnings:
        rt.klog("W", warning, "common.go:101")
    problems = []
    if "JoinConfiguration" in found:
        join = apiconfig.default_join(found["JoinConfiguration"], rt.host.hostname(), lambda: "0.0.0.0")
        problems += apiconfig.validate_join(join)
    if "InitConfiguration" in found or "ClusterConfiguration" in found:
        from lab.sim.kubeadm import tokens
        init = apiconfig.default_init(found.get("InitConfiguration"), rt.host.hostname(), lambda: "0.0.0.0",
                                      tokens.new_token)
        cluster = apiconfig.default_cluster(found.get("ClusterConfiguration"))
        problems += apiconfig.validate_init(init, cluster)
    error = apiconfig.aggregate(problems)
    if error:
        raise error
    rt.say("ok")
    return 0


def _commands():
    from lab.sim.kubeadm import init_cmd, join_cmd, reset_cmd, token_cmd
    return {
        ("version",): run_version,
        ("init",): init_cmd.run_init,
        ("init", "phase", "upload-certs"): init_cmd.run_upload_certs,
        ("join",): join_cmd.run_join,
        ("reset",): reset_cmd.run_reset,
        ("token", "create"): token_cmd.run_create,
        ("token", "list"): token_cmd.run_list,
        ("config", "validate"): run_config_validate,
    }


GROUPS = {("init", "phase"), ("token",), ("config",)}


def _dispatch(argv):
    commands = _commands()
    words = []
    rest = list(argv)
    while rest and not rest[0].startswith("-"):
        candidate = tuple(words + [rest[0]])
        if candidate in commands or candidate in GROUPS:
            words.append(rest.pop(0))
            continue
        break
    key = tuple(words)
    if key in commands:
        return commands[key], rest
    parent = " ".join(["kubeadm"] + words)
    if rest and not rest[0].startswith("-"):
        raise KubeadmError(f'unknown command "{rest[0]}" for "{parent}"')
    raise KubeadmError(f'"{parent}" requires a subcommand; the lab simulator implements: '
                       + ", ".join(" ".join(k) for k in commands))


def _verbosity(argv):
    for index, arg in enumerate(argv):
        for prefix in ("--v=", "-v="):
            if arg.startswith(prefix) and arg[len(prefix):].isdigit():
                return int(arg[len(prefix):])
        if arg in ("--v", "-v") and index + 1 < len(argv) and argv[index + 1].isdigit():
            return int(argv[index + 1])
    return 0


def main(argv, rt=None):
    sim = rt.sim if rt is not None else sim_config.load()
    rt = rt or Runtime(sim, verbosity=_verbosity(argv))
    try:
        command, rest = _dispatch(argv)
        return command(rt, rest)
    except KubeadmError as exc:
        rt.out.flush()
        rt.err.write(errors.render(exc, sim.kubernetes_version))
        rt.err.flush()
        return errors.EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
