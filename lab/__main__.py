"""python -m lab: bring up, use and tear down the namespace lab (run as root from the repo root)."""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import time
from pathlib import Path

from .components import BuildError, PinError
from .core import REPO_ROOT, Lab, LabError
from .plan import PlanError


def _default_state_dir() -> Path:
    return Path(os.environ.get("VIPADM_LAB_DIR", REPO_ROOT / ".lab"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lab", description="vipadm's namespace lab (see docs/lab.md)")
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="lab state folder (env VIPADM_LAB_DIR, default <repo>/.lab)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="create the nodes, the network and the Ansible inventory")
    up.add_argument("--control-planes", type=int, default=3)
    up.add_argument("--workers", type=int, default=0)
    up.add_argument("--subnet", default="198.51.100.0/24")
    up.add_argument("--kubernetes-version", default=None, help="a pinned release or minor (default: the pins' default)")
    up.add_argument("--kube-vip", default=None, help="the kube-vip tag whose image the nodes get (default: the pins')")
    up.add_argument("--runtime", choices=("real", "bare"), default="real",
                    help="real: Kubernetes built from upstream sources (default); bare: nodes with sshd only")
    up.add_argument("--bare-nodes", action="store_true",
                    help="real nodes with only Debian's containerd, runc and CNI plugins and no route out: no kubeadm, "
                         "kubelet, kubectl or images; the inventory points node_prep at the pin's bundle")
    up.add_argument("--ipv6", action="store_true",
                    help="nodes, controller and a VIP also get addresses of a /64 of 2001:db8::/32 (SSH stays on IPv4)")
    up.add_argument("--name", default="vipadm", help="lab name; prefixes every namespace and link name")
    build = commands.add_parser("build", help="build (or take from the cache) the components of a pin")
    build.add_argument("--kubernetes", default=None, help="a pinned Kubernetes release or minor (default: the pins' default)")
    build.add_argument("--kube-vip", default=None,
                       help="a pinned kube-vip tag (default: the pins' default); 'all': also every other pinned tag")
    build.add_argument("--kubeadm", choices=("all",), default=None,
                       help="'all': also kubeadm alone of every pinned minor (the per-minor config validation)")
    build.add_argument("--all", action="store_true",
                       help="every pin the lab's nodes run, kubeadm of every pinned minor, and every kube-vip tag")
    build.add_argument("--jobs", type=int, default=1, help="components built at once (default 1: 2 GB RSS each)")
    build.add_argument("--pins-ready", type=Path, default=None, metavar="FILE",
                       help="create FILE once the pins the lab's nodes run are built, while the rest still builds")
    bundle = commands.add_parser(
        "bundle", help="write the air-gapped bundle of a pin (binaries, images, bundle.json, SHA256SUMS) into DIR"
    )
    bundle.add_argument("directory", type=Path, metavar="DIR")
    bundle.add_argument("--kubernetes", default=None, help="a pinned Kubernetes release or minor (default: the pins' default)")
    bundle.add_argument("--kube-vip", default=None, help="a pinned kube-vip tag (default: the pins' default)")
    pins = commands.add_parser("pins", help="show the pins; --refresh records the images each pinned kubeadm asks for")
    pins.add_argument("--refresh", action="store_true")
    pins.add_argument("--kubernetes", default=None, help="refresh only this pinned release or minor")
    commands.add_parser("down", help="remove everything the lab made")
    commands.add_parser("status", help="list nodes, addresses and states")
    for command, text in (
        ("stop", "power a node off"),
        ("start", "power a node on"),
        ("isolate", "cut a node's network"),
        ("rejoin", "restore a node's network"),
        ("ssh", "open an SSH session to a node"),
    ):
        commands.add_parser(command, help=text).add_argument("node")
    kubectl = commands.add_parser(
        "kubectl", help="the lab's kubectl against its cluster through the VIP: kubectl -- get nodes -o wide"
    )
    kubectl.add_argument("argv", nargs=argparse.REMAINDER)
    execute = commands.add_parser("exec", help="run a command inside a node: exec NODE -- CMD...")
    execute.add_argument("node")
    execute.add_argument("argv", nargs=argparse.REMAINDER)
    # --state-dir is accepted after the command too
    for sub in commands.choices.values():
        sub.add_argument("--state-dir", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    state_dir = args.state_dir or _default_state_dir()
    if args.command in ("build", "pins", "bundle"):
        return _components(args)
    try:
        if args.command == "up":
            lab = Lab(
                name=args.name,
                state_dir=state_dir,
                subnet=args.subnet,
                control_planes=args.control_planes,
                workers=args.workers,
                kubernetes_version=args.kubernetes_version,
                runtime=args.runtime,
                kube_vip_version=args.kube_vip,
                node_software="bare" if args.bare_nodes else "installed",
                ipv6=args.ipv6,
            )
            started = time.monotonic()
            lab.up(log=print)
            print(f"lab {lab.name} up in {time.monotonic() - started:.2f} s: {len(lab.nodes)} nodes, VIP {lab.vip}"
                  + (f", IPv6 {lab.plan.subnet6} (VIP {lab.vip6})" if lab.vip6 else ""))
            print(f"  ansible -i {lab.inventory_path} all -m ping")
            print(f"  ssh -F {lab.ssh_config_path} {lab.nodes[0].name}")
            if lab.bundle_dir:
                print(f"  bare nodes: node_prep installs Kubernetes from the bundle {lab.bundle_dir}")
            return 0
        lab = Lab.load(state_dir)
        if args.command == "down":
            started = time.monotonic()
            lab.down()
            print(f"lab {lab.name} down in {time.monotonic() - started:.2f} s")
        elif args.command == "status":
            kubernetes = f", Kubernetes {lab.kubernetes_version}" if lab.kubernetes_version else ""
            kubernetes += f", bare nodes (bundle {lab.bundle_dir})" if lab.node_software == "bare" else ""
            print(f"lab {lab.name} ({lab.runtime}{kubernetes}): subnet {lab.plan.subnet}, "
                  f"controller {lab.controller_address}, VIP {lab.vip}"
                  + (f"; IPv6 {lab.plan.subnet6}, controller {lab.plan.controller_address6}, VIP {lab.vip6}" if lab.vip6 else ""))
            for row in lab.status():
                pid = f"pid {row['pid']}" if row["pid"] else ""
                address6 = f" {row['address6']}" if row.get("address6") else ""
                print(f"  {row['name']:<10} {row['address']:<16} {row['role']:<14} {row['state']:<20} {pid}{address6}")
        elif args.command == "exec":
            command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
            if not command:
                raise LabError("exec needs a command: exec NODE -- CMD...")
            os.execvp("nsenter", lab._exec_argv(args.node, command))
        elif args.command == "kubectl":
            command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
            kubeconfig = lab.admin_kubeconfig()
            os.execv(str(lab.kubectl_path), ["kubectl", "--kubeconfig", str(kubeconfig), *command])
        elif args.command == "ssh":
            node = lab.node(args.node)
            os.execvp("ssh", ["ssh", "-F", str(lab.ssh_config_path), node.name])
        else:
            getattr(lab, args.command)(args.node)
        return 0
    except (LabError, PlanError, BuildError, PinError) as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1


def _components(args) -> int:
    from . import components

    try:
        builder = components.Builder(jobs=args.jobs if args.command == "build" else 1)
        started = time.monotonic()
        if args.command == "pins":
            return _pins(builder, args)
        if args.command == "bundle":
            from .components.bundle import write_bundle

            written = write_bundle(builder.build_pin(args.kubernetes, args.kube_vip), args.directory, log=print)
            print(f"done in {time.monotonic() - started:.2f} s: {written.size / 1e6:.0f} MB; "
                  f"check with: cd {written.directory} && sha256sum -c SHA256SUMS")  # fmt: skip
            return 0
        lab_versions = builder.pins.lab_versions if args.all else [args.kubernetes]
        # With --jobs N, N of these at once: a cold build waits on the Go module proxy a quarter of its time.
        # Two asks of one component (the default kube-vip tag of each pin) meet at its cache lock; one builds.
        with concurrent.futures.ThreadPoolExecutor(max_workers=builder.jobs) as pool:
            pin_builds = [pool.submit(builder.build_pin, version,
                                      None if args.all or args.kube_vip == "all" else args.kube_vip)
                          for version in lab_versions]  # fmt: skip
            others = []
            if args.all or args.kube_vip == "all":
                # Newest first: the lab suites deploy the newest (the upgrade test starts from the one before the default).
                others += [pool.submit(builder.kube_vip, tag) for tag in reversed(builder.pins.kube_vip)]
            if args.all or args.kubeadm == "all":
                others += [pool.submit(builder.kubeadm, pin.version) for pin in builder.pins.kubernetes.values()]
            builds = [future.result() for future in pin_builds]
            if args.pins_ready:
                args.pins_ready.touch()
            for future in others:
                future.result()
        for build in builds:
            print(f"Kubernetes {build.kubernetes_version} + kube-vip {build.kube_vip_tag}: {len(build.images)} images")
        print(f"done in {time.monotonic() - started:.2f} s; cache {builder.cache}")
        return 0
    except (components.BuildError, components.PinError) as exc:
        print(f"lab build: {exc}", file=sys.stderr)
        return 1


def _pins(builder, args) -> int:
    refresh = args.refresh
    from .components import pins as pin_data, recipes

    only = builder.pins.kubernetes_pin(args.kubernetes, for_nodes=False).minor if args.kubernetes else None
    for minor, pin in builder.pins.kubernetes.items():
        if refresh and only in (None, minor):
            asked = builder.kubeadm(pin.version).info["kubeadm_images"]
            versions = recipes.image_list_versions(asked)
            # written minor by minor: a build that fails later keeps what the earlier kubeadms said
            builder.pins.path.write_text(pin_data.with_images(builder.pins.path.read_text(), minor, versions))
            print(f"{pin.version}: kubeadm asks for " + ", ".join(asked) + f" (written to {builder.pins.path})")
        else:
            print(f"{pin.version}: {pin.images or 'images not recorded yet (run pins --refresh)'}")
    print("kube-vip: " + ", ".join(builder.pins.kube_vip) + f" (default {builder.pins.default_kube_vip})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
