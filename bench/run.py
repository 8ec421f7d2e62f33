"""Benchmark vipadm's site playbook against the floor on the lab; print a table, write JSON and a PNG.

    sudo .venv/bin/python -m bench                      # 3 reps of 3+0, 3+10, 3+30; re-run and check on 3+10
    sudo .venv/bin/python -m bench --reps 1 --control-planes 1 --workers 1 --rerun-workers 1   # smoke

Every measured run starts from a fresh lab (`lab up` on claimed /27 slices) prepared by the
node_prep role (molecule/default/prepare.yml), untimed; then one of:
  floor  - bench/floor.py: the eight steps by a plain script over SSH;
  site   - ansible-playbook playbooks/site.yml (wall time of the whole command);
and, on the finished site cluster with --rerun-workers workers: the idempotent re-run and --check.
Sizes and methods are interleaved per repetition so that a slow spell of the machine hits all alike.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# pylint: disable=wrong-import-position
from bench import floor, slices  # noqa: E402
from lab import Lab  # noqa: E402

VENV_BIN = REPO / ".venv" / "bin"
PREPARE = REPO / "molecule" / "default" / "prepare.yml"
SITE = REPO / "playbooks" / "site.yml"
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
# Unique per benchmark process (lab names are global: bridge and namespaces), at most 10 characters.
LAB_NAME = f"bench{os.getpid() % 100000}"


class BenchError(RuntimeError):
    """A run failed; the message says which and where its log is."""


def ansible_env(timing_path=None):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACK_PLUGINS=str(REPO / "bench" / "callback_plugins"))
    if timing_path:
        env.update(ANSIBLE_CALLBACKS_ENABLED="bench_timing", VIPADM_BENCH_TIMING=str(timing_path))
    return env


def playbook(lab, path, log, args=(), timing_path=None):
    """ansible-playbook on the lab: (seconds, {host: (ok, changed, unreachable, failed)})."""
    argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(lab.inventory_path), str(path), *args]
    started = time.monotonic()
    with open(log, "w", encoding="utf-8") as out:
        result = subprocess.run(argv, cwd=REPO, env=ansible_env(timing_path), stdout=out, stderr=subprocess.STDOUT,
                                check=False)
    seconds = time.monotonic() - started
    text = Path(log).read_text(encoding="utf-8")
    recap = {m[0]: tuple(int(x) for x in m[1:]) for m in RECAP.findall(text)}
    if result.returncode != 0:
        raise BenchError(f"{' '.join(argv[1:])} failed (rc {result.returncode}); log: {log}")
    return seconds, recap


class BenchLab:
    """A fresh, prepared lab on claimed slices; brought down and released on exit."""

    def __init__(self, control_planes, workers, workdir):
        self.control_planes, self.workers = control_planes, workers
        self.state_dir = Path(tempfile.mkdtemp(prefix="lab-", dir=workdir))
        self.claim = None
        self.lab = None

    def __enter__(self):
        self.claim = slices.claim(self.control_planes, self.workers, LAB_NAME, self.state_dir)
        try:
            lab = Lab(name=LAB_NAME, state_dir=self.state_dir, subnet=self.claim.subnet,
                      control_planes=self.control_planes, workers=self.workers, runtime="simulator")
            lab.up()  # on failure, up() takes down what it made; never down() a lab we did not make
            self.lab = lab
            playbook(self.lab, PREPARE, self.state_dir / "prepare.log")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self.lab

    def __exit__(self, *exc):
        try:
            if self.lab is not None:
                self.lab.down()
        finally:
            self.claim.release()


def machine():
    """What the figures were measured on."""
    def first(path, key):
        try:
            for line in Path(path).read_text(encoding="utf-8").splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip() if ":" in line else line.split("=", 1)[1].strip('"')
        except OSError:
            pass
        return "unknown"
    ansible = subprocess.run([str(VENV_BIN / "ansible"), "--version"], capture_output=True, text=True,
                             check=False).stdout.splitlines()
    return {
        "cpu": first("/proc/cpuinfo", "model name"),
        "cores": os.cpu_count(),
        "memory": first("/proc/meminfo", "MemTotal"),
        "os": first("/etc/os-release", "PRETTY_NAME"),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "ansible": ansible[0] if ansible else "unknown",
        "load_at_start": os.getloadavg(),
    }


def measure(args, workdir, samples):
    """All runs, appended to samples (failures recorded, not raised; an interrupt keeps what was measured)."""

    def record(**sample):
        sample.update(load=os.getloadavg()[0], at=datetime.datetime.now(datetime.timezone.utc).isoformat())
        samples.append(sample)
        shown = f"{sample['seconds']:.1f} s" if sample.get("seconds") is not None else "FAILED " + sample["error"]
        print(f"  {sample['what']:<6} {sample['control_planes']}+{sample['workers']:<3} rep {sample['rep']}: "
              f"{shown}  (load {sample['load']:.1f})", flush=True)

    for rep in range(1, args.reps + 1):
        for workers in args.workers:
            for what in args.methods:
                base = {"what": what, "control_planes": args.control_planes, "workers": workers, "rep": rep}
                logdir = workdir / f"{what}-{args.control_planes}+{workers}-rep{rep}"
                logdir.mkdir()
                try:
                    with BenchLab(args.control_planes, workers, workdir) as lab:
                        if what == "floor":
                            result = floor.bootstrap(lab)
                            record(**base, seconds=result["total"], phases=result["phases"],
                                   ssh_commands=result["ssh_commands"])
                            continue
                        seconds, _ = playbook(lab, SITE, logdir / "site.log", timing_path=logdir / "site.json")
                        record(**base, seconds=seconds, timing=str(logdir / "site.json"))
                        if workers != args.rerun_workers:
                            continue
                        for again, extra in (("rerun", ()), ("check", ("--check",))):
                            seconds, recap = playbook(lab, SITE, logdir / f"{again}.log", extra,
                                                      timing_path=logdir / f"{again}.json")
                            changed = sum(v[1] for v in recap.values())
                            record(**dict(base, what=again), seconds=seconds, changed=changed,
                                   timing=str(logdir / f"{again}.json"))
                except Exception as exc:  # pylint: disable=broad-except
                    traceback.print_exc()
                    record(**base, seconds=None, error=str(exc).splitlines()[0][:300])


def summarize(samples):
    """{(what, control_planes, workers): {median, min, max, n, failed}}."""
    groups = {}
    for sample in samples:
        groups.setdefault((sample["what"], sample["control_planes"], sample["workers"]), []).append(sample)
    summary = {}
    for key, group in sorted(groups.items(), key=lambda kv: (kv[0][2], kv[0][0])):
        times = [s["seconds"] for s in group if s.get("seconds") is not None]
        summary[key] = {"median": statistics.median(times) if times else None, "min": min(times, default=None),
                        "max": max(times, default=None), "n": len(times), "failed": len(group) - len(times),
                        "changed": [s["changed"] for s in group if "changed" in s]}
    return summary


def fmt(seconds):
    return "-" if seconds is None else f"{seconds:.1f}"


def table(summary):
    """Markdown table: one row per measurement, then the ratios the targets are about."""
    lines = ["| what | control planes + workers | nodes | median s | min-max s | runs | failed |",
             "|---|---|---|---|---|---|---|"]
    for (what, cps, workers), row in summary.items():
        lines.append(f"| {what} | {cps} + {workers} | {cps + workers} | {fmt(row['median'])} | "
                     f"{fmt(row['min'])}-{fmt(row['max'])} | {row['n']} | {row['failed']} |")
    return "\n".join(lines)


def ratios(summary, control_planes):
    """The figures the targets are stated in."""
    def median(what, workers):
        row = summary.get((what, control_planes, workers))
        return row["median"] if row else None
    out = {}
    workers = sorted({k[2] for k in summary})
    for count in workers:
        site, base = median("site", count), median("floor", count)
        if site and base:
            out[f"overhead site/floor at {control_planes}+{count}"] = site / base
    if len(workers) > 1 and median("site", workers[0]) and median("site", workers[-1]):
        out[f"site {control_planes}+{workers[-1]} / site {control_planes}+{workers[0]}"] = (
            median("site", workers[-1]) / median("site", workers[0]))
    return out


def plot(summary, path):
    """PNG: time against number of nodes, vipadm against the floor (median, min-max bars)."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel
    figure, axes = pyplot.subplots(figsize=(7, 4.5), dpi=100)
    styles = {"floor": ("floor (plain script over SSH)", "tab:gray", "s"),
              "site": ("vipadm site.yml", "tab:blue", "o"),
              "rerun": ("vipadm re-run", "tab:green", "^"),
              "check": ("vipadm --check", "tab:orange", "v")}
    for what, (label, color, marker) in styles.items():
        rows = sorted(((cps + workers, row) for (w, cps, workers), row in summary.items()
                       if w == what and row["median"] is not None), key=lambda r: r[0])
        if not rows:
            continue
        nodes = [r[0] for r in rows]
        medians = [r[1]["median"] for r in rows]
        errors = [[m - r[1]["min"] for m, r in zip(medians, rows)], [r[1]["max"] - m for m, r in zip(medians, rows)]]
        axes.errorbar(nodes, medians, yerr=errors, label=label, color=color, marker=marker, capsize=4,
                      linestyle="-" if len(rows) > 1 else "none")
    axes.set_xticks(sorted({cps + workers for (_, cps, workers) in summary}))
    axes.set_xlabel("nodes (control planes + workers)")
    axes.set_ylabel("wall time, s (median, min-max)")
    axes.set_title("Bootstrap time on the lab: vipadm against the floor")
    axes.set_ylim(bottom=0)
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, format="png")
    pyplot.close(figure)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions of every measurement (3)")
    parser.add_argument("--control-planes", type=int, default=3, help="control planes in every lab (3)")
    parser.add_argument("--workers", default="0,10,30", help="worker counts, comma-separated (0,10,30)")
    parser.add_argument("--rerun-workers", type=int, default=10,
                        help="worker count whose finished site cluster gets the re-run and --check (10)")
    parser.add_argument("--methods", default="floor,site", help="floor,site (both)")
    parser.add_argument("--out", default=str(REPO / "bench" / "results"),
                        help="directory for results.json, bench.png and table.md (bench/results)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the per-run logs and task timings")
    args = parser.parse_args(argv)
    args.workers = [int(w) for w in args.workers.split(",") if w.strip()]
    args.methods = [m for m in args.methods.split(",") if m.strip()]
    bad = [m for m in args.methods if m not in ("floor", "site")]
    if bad or args.reps < 1 or args.control_planes < 1 or any(w < 0 for w in args.workers):
        parser.error("--methods takes floor and/or site; --reps and --control-planes at least 1; workers >= 0")
    try:
        slices.prefix_for(args.control_planes + max(args.workers))  # a lab that does not fit: before any run
    except ValueError as exc:
        parser.error(str(exc))
    return args


def _stop(signum, _frame):
    """SIGTERM/SIGHUP end the run like Ctrl-C: the lab that is up goes down, its slices are released."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    args = parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, _stop)  # SIGINT too: a background job starts with it ignored
    if os.geteuid() != 0:
        sys.exit("bench: the lab needs root (namespaces, links, mounts): run as root")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="vipadm-bench-", dir="/tmp"))
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"bench: {command.strip()}; logs in {workdir}", flush=True)
    started = time.monotonic()
    about = machine()
    samples = []
    try:
        measure(args, workdir, samples)
    except KeyboardInterrupt as exc:
        about["interrupted"] = str(exc) or "interrupted"
        print(f"bench: interrupted ({about['interrupted']}); writing what was measured", flush=True)
    about["load_at_end"] = os.getloadavg()
    summary = summarize(samples)
    report = {"command": command.strip(), "machine": about, "minutes": (time.monotonic() - started) / 60,
              "summary": [dict(zip(("what", "control_planes", "workers"), k), **v) for k, v in summary.items()],
              "ratios": ratios(summary, args.control_planes), "samples": samples}
    for sample in samples:  # task timings inline, so results.json stands alone when the logs are gone
        if sample.get("timing") and Path(sample["timing"]).exists():
            sample["tasks"] = json.loads(Path(sample["timing"]).read_text(encoding="utf-8"))
            del sample["timing"]
    (out / "results.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    text = table(summary) + "\n\n" + "\n".join(f"* {k}: {v:.2f}" for k, v in report["ratios"].items()) + "\n"
    (out / "table.md").write_text(text, encoding="utf-8")
    plot(summary, out / "bench.png")
    print("\n" + text + f"\nresults: {out}/results.json, {out}/table.md, {out}/bench.png "
          f"({report['minutes']:.1f} min)")
    if not args.keep_logs:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if any(s.get("seconds") is None for s in samples) else 0


if __name__ == "__main__":
    sys.exit(main())
