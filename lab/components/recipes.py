"""How each component is built: pure functions over versions and upstream files (no I/O).

The builder (build.py) runs what these functions describe; unit tests call them directly. When a
recipe changes in a way that changes its output, bump RECIPE_REVISION: it is part of every cache
key, so results of the old recipe are never taken for results of the new one.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex

RECIPE_REVISION = 1

# kubeadm, kubelet, kubectl and the control plane, in one `go build` (they share most packages).
KUBERNETES_COMMANDS = (
    "kubeadm",
    "kubelet",
    "kubectl",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-proxy",
)
# Of those, the ones kubeadm runs as containers (the others are host binaries).
KUBERNETES_IMAGES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy")

_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
_STAGING_REPLACE = re.compile(r"^\s*(?:replace\s+)?(\S+)\s+=>\s+\./staging/\S+\s*$")
_GO_DIRECTIVE = re.compile(r"^(go|godebug|toolchain)\s+\S.*$")


class RecipeError(ValueError):
    """An input a recipe cannot use; the message says what is wrong."""


def parse_version(version: str) -> tuple[int, int, int]:
    """(major, minor, patch) of "1.36.3" or "v1.36.3"."""
    match = _VERSION.match(version.strip())
    if not match:
        raise RecipeError(f"{version!r} is not a release version like 1.36.3")
    return int(match[1]), int(match[2]), int(match[3])


def kubernetes_wrapper_gomod(kubernetes_version: str, kubernetes_gomod: str) -> str:
    """go.mod of a module that builds k8s.io/kubernetes at a release.

    k8s.io/kubernetes replaces every staging module (k8s.io/api, k8s.io/client-go, ...) with a
    ./staging directory that its module zip does not have; the wrapper replaces each of them with
    the published v0.<minor>.<patch> instead. Its go and godebug lines are carried over (godebug
    changes run-time behaviour).
    """
    major, minor, patch = parse_version(kubernetes_version)
    staging = []
    directives = []
    in_replace = False
    for line in kubernetes_gomod.splitlines():
        stripped = line.split("//", 1)[0].rstrip()
        if stripped.startswith("replace ("):
            in_replace = True
            continue
        if in_replace and stripped.strip() == ")":
            in_replace = False
            continue
        if in_replace or stripped.startswith("replace "):
            match = _STAGING_REPLACE.match(stripped)
            if match:
                staging.append(match[1])
            continue
        if _GO_DIRECTIVE.match(stripped):
            directives.append(stripped)
    if not staging:
        raise RecipeError(f"the go.mod of k8s.io/kubernetes v{major}.{minor}.{patch} has no ./staging replacements")
    lines = ["module vipadm.lab/kubernetes", "", *directives, "", f"require k8s.io/kubernetes v{major}.{minor}.{patch}", ""]
    lines.append("replace (")
    lines += [f"\t{module} => {module} v0.{minor}.{patch}" for module in sorted(set(staging))]
    lines.append(")")
    return "\n".join(lines) + "\n"


def kubernetes_ldflags(kubernetes_version: str, build_date: str = "1970-01-01T00:00:00Z") -> str:
    """-ldflags that stamp the version, so `kubeadm version -o short` prints it (unstamped binaries
    say v0.0.0 and kubeadm refuses every version). build_date is fixed by default: same input, same bytes."""
    major, minor, patch = parse_version(kubernetes_version)
    stamps = {
        "gitVersion": f"v{major}.{minor}.{patch}",
        "gitMajor": str(major),
        "gitMinor": str(minor),
        "gitTreeState": "clean",
        "buildDate": build_date,
    }
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {package}.{name}={value}" for name, value in stamps.items()]
    return " ".join(flags)


def kubernetes_packages() -> list[str]:
    return [f"k8s.io/kubernetes/cmd/{command}" for command in KUBERNETES_COMMANDS]


def etcd_source_version(image_tag: str) -> str:
    """The etcd release behind kubeadm's image tag: "3.6.8-0" -> "v3.6.8"."""
    match = re.match(r"^v?(\d+\.\d+\.\d+)(?:-\d+)?$", image_tag)
    if not match:
        raise RecipeError(f"{image_tag!r} is not an etcd image tag like 3.6.8-0")
    return "v" + match[1]


def etcd_wrapper_gomod(etcd_version: str) -> str:
    parse_version(etcd_version)
    return (
        "module vipadm.lab/etcd\n\ngo 1.24\n\n"
        f"require (\n\tgo.etcd.io/etcd/server/v3 {etcd_version}\n\tgo.etcd.io/etcd/etcdctl/v3 {etcd_version}\n)\n"
    )


def coredns_wrapper_gomod(coredns_version: str) -> str:
    parse_version(coredns_version)
    return f"module vipadm.lab/coredns\n\ngo 1.24\n\nrequire github.com/coredns/coredns {coredns_version}\n"


def kube_vip_ldflags(makefile: str, tag: str, build: str) -> str:
    """The -ldflags of the tag's own Makefile (LDFLAGS=-ldflags "..."), with $(VERSION) and $(BUILD)
    filled in. `-extldflags -static` is dropped: the build is CGO_ENABLED=0, static already."""
    match = re.search(r'^LDFLAGS\s*[:?]?=\s*-ldflags\s+"([^"]*)"', makefile, re.M)
    if not match:
        raise RecipeError("the kube-vip Makefile has no LDFLAGS=-ldflags \"...\" line")
    words = shlex.split(match[1].replace("$(VERSION)", tag).replace("$(BUILD)", build))
    kept = []
    skip_next = False
    for word in words:
        if skip_next:
            skip_next = False
            continue
        if word == "-extldflags":
            skip_next = True
            continue
        kept.append(word)
    return " ".join(kept)


def kube_vip_needs_checklinkname(tag: str) -> bool:
    """Tags v0.5.x and older link against runtime internals that Go >= 1.23 hides unless
    -checklinkname=0 is given."""
    major, minor, _ = parse_version(tag)
    return (major, minor) <= (0, 5)


def image_list_versions(image_references: list[str]) -> dict[str, str]:
    """{"etcd": "3.6.8-0", "coredns": "v1.14.2", "pause": "3.10.2", "kube-apiserver": "v1.36.3", ...}
    from the lines of `kubeadm config images list`."""
    versions = {}
    for reference in image_references:
        reference = reference.strip()
        if not reference:
            continue
        name, _, tag = reference.rpartition(":")
        if not name or "/" not in name:
            raise RecipeError(f"{reference!r} is not an image reference like registry.k8s.io/pause:3.10.2")
        versions[name.rsplit("/", 1)[1]] = tag
    return versions


def cache_key(component: str, version: str, go_version: str, **inputs: str) -> str:
    """Hex key of one build: what was built (component, version), how (recipe revision, Go
    version, recipe inputs such as ldflags or a source hash)."""
    material = json.dumps(
        {"component": component, "version": version, "recipe": RECIPE_REVISION, "go": go_version, **inputs},
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:16]
