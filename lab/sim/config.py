"""Simulator-wide settings: the Kubernetes version the lab pretends to run and the time scale.

The settings come from the JSON file named by ``LAB_SIM_CONFIG`` (default
``/etc/lab-sim/config.json``), e.g. ``{"kubernetes_version": "1.32.4", "time_scale": 1.0}``.
A missing file gives the defaults below, so a unit test needs no file at all.
"""

import json
import os
from dataclasses import dataclass

CONFIG_ENV = "LAB_SIM_CONFIG"
DEFAULT_CONFIG_PATH = "/etc/lab-sim/config.json"
DEFAULT_VERSION = "1.32.4"
SUPPORTED_MINORS = range(29, 37)  # 1.29 .. 1.36


class Version(tuple):
    """A Kubernetes version, comparable with plain tuples: ``Version.parse("v1.32.4") >= (1, 29)``."""

    def __new__(cls, major, minor, patch=0):
        return super().__new__(cls, (int(major), int(minor), int(patch)))

    @classmethod
    def parse(cls, text):
        raw = str(text).strip()
        core = raw[1:] if raw[:1] in ("v", "V") else raw
        core = core.split("-", 1)[0].split("+", 1)[0]
        parts = core.split(".")
        if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
            raise ValueError(f'could not parse "{raw}" as version')
        return cls(*parts)

    major = property(lambda self: self[0])
    minor = property(lambda self: self[1])
    patch = property(lambda self: self[2])

    def __str__(self):
        return f"v{self[0]}.{self[1]}.{self[2]}"

    def __repr__(self):
        return f"Version({str(self)!r})"


@dataclass(frozen=True)
class SimConfig:
    kubernetes_version: Version
    time_scale: float = 1.0

    def scaled(self, seconds):
        """A long timer of the real tools (token TTL, certificate-key TTL, kubeadm timeouts), scaled."""
        return float(seconds) * self.time_scale


def from_dict(data):
    unknown = set(data) - {"kubernetes_version", "time_scale"}
    if unknown:
        raise ValueError(f"unknown simulator settings: {', '.join(sorted(unknown))}")
    version = Version.parse(data.get("kubernetes_version", DEFAULT_VERSION))
    scale = float(data.get("time_scale", 1.0))
    if scale <= 0:
        raise ValueError("time_scale must be greater than 0")
    return SimConfig(kubernetes_version=version, time_scale=scale)


def load(path=None):
    path = path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        if os.environ.get(CONFIG_ENV) and path == os.environ[CONFIG_ENV]:
            raise
        data = {}
    return from_dict(data)


def go_duration(seconds):
    """Format seconds as Go's time.Duration.String() does: 10s, 4m0s, 1h0m0s, 500ms, 4m0.001976302s."""
    nanos = int(round(float(seconds) * 1e9))
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    nanos = abs(nanos)
    if nanos < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if nanos >= size:
                whole, frac = divmod(nanos, size)
                digits = str(frac).rjust(len(str(size)) - 1, "0").rstrip("0") if size > 1 else ""
                return f"{sign}{whole}{'.' + digits if digits else ''}{unit}"
    hours, rest = divmod(nanos, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    secs, frac = divmod(rest, 10**9)
    frac_text = str(frac).rjust(9, "0").rstrip("0")
    text = f"{secs}{'.' + frac_text if frac_text else ''}s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(text):
    """Seconds from a Go duration string (``15s``, ``1m30s``, ``500ms``, ``2h0m0s``)."""
    import re  # pylint: disable=import-outside-toplevel
    raw = str(text).strip()
    if raw in ("0", ""):
        return 0.0
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", raw)
    if not parts or "".join(n + u for n, u in parts) != raw.lstrip("+"):
        raise ValueError(f'time: invalid duration "{raw}"')
    return sum(float(number) * _GO_UNITS[unit] for number, unit in parts)
