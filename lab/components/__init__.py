"""The lab's components: Kubernetes, etcd, CoreDNS, pause and kube-vip built from upstream sources,
with their container images, cached outside the repository (see build.py and docs/lab.md)."""

from .build import Builder, BuildError, PinBuild, Result, cache_root, kube_vip_source
from .pins import PinError, Pins, load as load_pins

__all__ = ["Builder", "BuildError", "PinBuild", "PinError", "Pins", "Result", "cache_root", "kube_vip_source", "load_pins"]
