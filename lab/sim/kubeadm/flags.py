"""A cobra/pflag-like command line parser: the flags of each kubeadm command and their errors."""

import re

from lab.sim.kubeadm.errors import KubeadmError

BOOL, STRING, STRINGS, INT, DURATION = "bool", "string", "strings", "int", "duration"

# Flags every kubeadm command accepts (persistent flags of the root command).
GLOBAL_FLAGS = {
    "v": (INT, "0", "v"),
    "rootfs": (STRING, "", None),
    "add-dir-header": (BOOL, "false", None),
    "log-file": (STRING, "", None),
    "log-file-max-size": (INT, "1800", None),
    "one-output": (BOOL, "false", None),
    "skip-headers": (BOOL, "false", None),
    "skip-log-headers": (BOOL, "false", None),
    "help": (BOOL, "false", "h"),
}

_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(text):
    """Seconds from a Go duration string (``24h0m0s``, ``2h``, ``90s``, ``0``)."""
    raw = text.strip()
    if raw in ("0", "+0", "-0"):
        return 0.0
    sign = -1.0 if raw.startswith("-") else 1.0
    body = raw.lstrip("+-")
    pos, total = 0, 0.0
    for match in _DURATION_RE.finditer(body):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not body or pos != len(body):
        raise ValueError(f'time: invalid duration "{text}"')
    return sign * total


class ParsedFlags:
    """The values of a command's flags and which ones the user set (pflag's ``Changed``)."""

    def __init__(self, spec):
        self.spec = spec
        self.values = {}
        self.changed = []
        for name, (kind, default, _short) in spec.items():
            self.values[name] = _convert(name, kind, default, None) if default is not None else None

    def __getitem__(self, name):
        return self.values[name]

    def is_set(self, name):
        return name in self.changed


def _convert(name, kind, text, current):
    try:
        if kind == BOOL:
            lowered = text.lower()
            if lowered in ("1", "t", "true"):
                return True
            if lowered in ("0", "f", "false"):
                return False
            raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')
        if kind == INT:
            return int(text)
        if kind == DURATION:
            return parse_go_duration(text)
        if kind == STRINGS:
            items = [item for item in text.split(",")] if text else []
            return (current or []) + items if current is not None else items
        return text
    except ValueError as exc:
        raise KubeadmError(f'invalid argument "{text}" for "--{name}" flag: {exc}') from None


def parse(argv, spec):
    """Parse ``argv`` against ``spec`` {name: (kind, default, shorthand)}; returns (flags, positional)."""
    spec = {**GLOBAL_FLAGS, **spec}
    shorthands = {short: name for name, (_k, _d, short) in spec.items() if short}
    flags = ParsedFlags(spec)
    positional = []
    args = list(argv)
    index = 0
    slice_started = set()

    def assign(name, value):
        kind = spec[name][0]
        current = flags.values[name] if name in slice_started else None
        flags.values[name] = _convert(name, kind, value, current if kind == STRINGS else None)
        if kind == STRINGS:
            slice_started.add(name)
        if name not in flags.changed:
            flags.changed.append(name)

    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            positional.extend(args[index:])
            break
        if arg.startswith("--") and len(arg) > 2:
            name, has_value, value = arg[2:].partition("=")
            if name not in spec:
                raise KubeadmError(f"unknown flag: --{name}")
            if spec[name][0] == BOOL:
                assign(name, value if has_value else "true")
            elif has_value:
                assign(name, value)
            elif index < len(args):
                assign(name, args[index])
                index += 1
            else:
                raise KubeadmError(f"flag needs an argument: --{name}")
        elif arg.startswith("-") and len(arg) > 1:
            short = arg[1]
            if short not in shorthands:
                raise KubeadmError(f"unknown shorthand flag: '{short}' in {arg}")
            name = shorthands[short]
            rest = arg[2:]
            if spec[name][0] == BOOL:
                assign(name, rest[1:] if rest.startswith("=") else "true")
                if rest and not rest.startswith("="):
                    raise KubeadmError(f"unknown shorthand flag: '{rest[0]}' in {arg}")
            elif rest:
                assign(name, rest[1:] if rest.startswith("=") else rest)
            elif index < len(args):
                assign(name, args[index])
                index += 1
            else:
                raise KubeadmError(f"flag needs an argument: '{short}' in -{short}")
        else:
            positional.append(arg)
    return flags, positional


# kubeadm's isAllowedFlag: flags that may be given together with --config.
_MIXABLE = {
    "config", "ignore-preflight-errors", "dry-run", "kubeconfig", "node-name", "kubeconfig-dir",
    "upload-certs", "print-manifest", "allow-missing-template-keys", "output",
    "show-managed-fields", "print-join-command", "rootfs", "v", "log-file", "yes",
}


def check_mixed_arguments(flags):
    """``can not mix '--config' with arguments [...]`` as kubeadm's ValidateMixedArguments."""
    if not flags.is_set("config"):
        return
    invalid = sorted(
        name for name in flags.changed if name not in _MIXABLE and not name.startswith("skip-")
    )
    if invalid:
        raise KubeadmError(f"can not mix '--config' with arguments [{' '.join(invalid)}]")
