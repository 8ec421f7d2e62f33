"""The pins: which Kubernetes patch per minor, which images its kubeadm asks for, which kube-vip tags.

One data file, pins.json, next to this module. Image versions in it are written by
`python -m lab pins --refresh` from the real kubeadm of each pin (never by hand). A pin with
`"lab": false` is built as kubeadm alone (the per-minor config validation); the lab's nodes run
only the pins with `"lab": true`.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .recipes import RecipeError, parse_version

PINS_FILE = Path(__file__).resolve().parent / "pins.json"
IMAGE_NAMES = ("etcd", "coredns", "pause")


class PinError(ValueError):
    """A version that is not pinned, or a pins file that cannot be used; the message says which are."""


@dataclasses.dataclass(frozen=True)
class KubernetesPin:
    version: str  # "1.36.3"
    images: dict[str, str] | None  # {"etcd": "3.6.8-0", "coredns": "v1.14.2", "pause": "3.10.2"} or None
    lab: bool = True  # False: only kubeadm is built, for config validation; no node runs this release

    @property
    def minor(self) -> str:
        major, minor, _ = parse_version(self.version)
        return f"{major}.{minor}"


@dataclasses.dataclass(frozen=True)
class Pins:
    default_kubernetes: str
    default_kube_vip: str
    kubernetes: dict[str, KubernetesPin]  # minor -> pin
    kube_vip: tuple[str, ...]
    path: Path = PINS_FILE

    def kubernetes_pin(self, version: str | None = None, for_nodes: bool = True) -> KubernetesPin:
        """The pin of "1.36.3", of a minor "1.36", or the default; for_nodes: one the lab's nodes can run."""
        wanted = (version or self.default_kubernetes).lstrip("v")
        minor = ".".join(wanted.split(".")[:2])
        pin = self.kubernetes.get(minor)
        if pin is None or (wanted.count(".") == 2 and pin.version != wanted):
            known = ", ".join(p.version for p in self.kubernetes.values())
            raise PinError(f"Kubernetes {wanted} is not pinned; the lab can build {known} (see {self.path})")
        if for_nodes and not pin.lab:
            raise PinError(f"Kubernetes {pin.version} is pinned for kubeadm's config checks only; the lab's nodes "
                           f"run {', '.join(self.lab_versions)} (see {self.path})")
        return pin

    @property
    def lab_versions(self) -> list[str]:
        """The releases the lab's nodes can run, oldest first."""
        return [pin.version for pin in self.kubernetes.values() if pin.lab]

    def kube_vip_tag(self, tag: str | None = None) -> str:
        tag = tag or self.default_kube_vip
        if not tag.startswith("v"):
            tag = "v" + tag
        if tag not in self.kube_vip:
            raise PinError(f"kube-vip {tag} is not pinned; the lab can build {', '.join(self.kube_vip)} (see {self.path})")
        return tag


def load(path: Path = PINS_FILE) -> Pins:
    try:
        data = json.loads(Path(path).read_text())
        kubernetes = {}
        for minor, entry in data["kubernetes"].items():
            pin = KubernetesPin(version=entry["version"], images=entry.get("images"), lab=entry.get("lab", True))
            if not isinstance(pin.lab, bool):
                raise PinError(f"{path}: lab of {minor} must be true or false, not {pin.lab!r}")
            if pin.minor != minor:
                raise PinError(f"{path}: the pin of minor {minor} is {pin.version}, a release of another minor")
            if pin.images is not None and set(pin.images) != set(IMAGE_NAMES):
                raise PinError(f"{path}: images of {minor} must name exactly {', '.join(IMAGE_NAMES)}")
            kubernetes[minor] = pin
        pins = Pins(
            default_kubernetes=data["default_kubernetes"],
            default_kube_vip=data["default_kube_vip"],
            kubernetes=kubernetes,
            kube_vip=tuple(data["kube_vip"]),
            path=Path(path),
        )
        pins.kubernetes_pin()
        pins.kube_vip_tag()
        for tag in pins.kube_vip:
            parse_version(tag)
    except (OSError, ValueError, KeyError, TypeError, RecipeError) as exc:
        if isinstance(exc, PinError):
            raise
        raise PinError(f"the pins file {path} cannot be used: {exc}") from None
    return pins


def with_images(pins_text: str, minor: str, images: dict[str, str]) -> str:
    """pins.json's text with the images of one minor replaced (the refresh command writes this)."""
    data = json.loads(pins_text)
    data["kubernetes"][minor]["images"] = {name: images[name] for name in IMAGE_NAMES}
    return json.dumps(data, indent=2) + "\n"
