"""Benchmark vipadm's site playbook against the floor on the lab; print a table, write JSON and a PNG.

    sudo .venv/bin/python -m bench                      # 3 reps of 3+0, 3+10, 3+30; re-run and check on 3+10
    sudo .venv/bin/python -m bench --reps 1 --control-planes 1 --workers 1 --rerun-workers 1   # smoke

Every measured run starts from a fresh lab of real nodes (`lab up` on claimed /27 slices: containerd, the
pinned kubelet/kubeadm and the control plane images built by lab/components) prepared by the node_prep
role (molecule/default/prepare.yml), untimed; then one of:
  floor  - bench/floor.py: the eight steps by a plain script over SSH, with the kubeadm configs the
           collection renders from the same inventory;
  site   - ansible-playbook playbooks/site.yml (wall time of the whole command);
and, on the finished site cluster with --rerun-workers workers: the idempotent re-run and --check.
Sizes and methods are interleaved per repetition so that a slow spell of the machine hits all alike.
Each sample keeps the machine's load average before and after it, and a finished cluster the memory
(PSS, RSS) of each node's processes.
"""

import argparse
import contextlib
import datetime
import json
import os
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
from bench import floor, machine, slices  # noqa: E402
from lab import Lab  # noqa: E402
from lab.nodes import limits  # noqa: E402

VENV_BIN = REPO / ".venv" / "bin"
PREPARE = REPO / "playbooks" / "node_prep.yml"
SITE = REPO / "playbooks" / "site.yml"
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
# Unique per benchmark process (lab names are global: bridge and namespaces), at most 10 characters.
LAB_NAME = f"bench{os.getpid() % 100000}"
# What kubeadm_seconds counts: site.yml's module actions and the floor's commands that run kubeadm init/join.
KUBEADM_ACTIONS = ("vipadm.kubeadm.init", "vipadm.kubeadm.join")
KUBEADM_COMMANDS = ("kubeadm init", "kubeadm join --control-plane")
# Seconds to wait, untimed, for a bootstrapped cluster to settle (nodes Ready, Pods Running) before its
# memory is read and before the re-run.
SETTLE_TIMEOUT = 180


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
    """A fresh lab of real nodes, prepared by node_prep.yml, on claimed slices; brought down and released on exit."""

    def __init__(self, control_planes, workers, workdir):
        self.control_planes, self.workers = control_planes, workers
        self.state_dir = Path(tempfile.mkdtemp(prefix="lab-", dir=workdir))
        self.claim = None
        self.lab = None

    def __enter__(self):
        self.claim = slices.claim(self.control_planes, self.workers, LAB_NAME, self.state_dir)
        try:
            lab = Lab(name=LAB_NAME, state_dir=self.state_dir, subnet=self.claim.subnet,
                      control_planes=self.control_planes, workers=self.workers, runtime="real")
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


def wait_settled(lab, timeout=SETTLE_TIMEOUT):
    """Seconds until every node is Ready and every Pod Running (untimed: the CNI is the lab's, and site.yml's
    work ends with verify), or None when that did not happen within `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        result = lab.exec(lab.nodes[0].name, ["kubectl", "--kubeconfig", floor.ADMIN, "get", "nodes,pods", "-A", "-o",
                                              "json"], check=False, timeout=60)
        if result.returncode == 0:
            items = json.loads(result.stdout)["items"]
            nodes = [i for i in items if i["kind"] == "Node"]
            ready = all(any(c["type"] == "Ready" and c["status"] == "True" for c in i["status"].get("conditions", []))
                        for i in nodes)
            if ready and len(nodes) == len(lab.nodes) and all(
                    i["status"].get("phase") == "Running" for i in items if i["kind"] == "Pod"):
                return round(time.monotonic() - started, 1)
        time.sleep(2)
    return None


def same_init_config(lab):
    """Whether the kubeadm init config site.yml left on the init host is the one the floor renders."""
    written = lab.node_file(lab.nodes[0].name, floor.INIT_CONFIG)
    rendered = floor.Cluster(floor.settings(lab.inventory_path), lab.vip).init_config()
    return written.exists() and written.read_text(encoding="utf-8") == rendered


def measure(args, workdir, samples):
    """All runs, appended to samples (failures recorded, not raised; an interrupt keeps what was measured).

    A sample is one configuration (method, size, repetition); it keeps the load averages before its lab
    comes up (load_before), when its timed run starts (load_start, the lab up and prepared) and right after
    it (load_after), and, once a bootstrap finished and the cluster settled, the memory of each node (untimed)."""

    def record(sample):
        sample.update(load_after=machine.load(), at=datetime.datetime.now(datetime.timezone.utc).isoformat())
        samples.append(sample)
        shown = f"{sample['seconds']:.1f} s" if sample.get("seconds") is not None else "FAILED " + sample["error"]
        print(f"  {sample['what']:<6} {sample['control_planes']}+{sample['workers']:<3} rep {sample['rep']}: "
              f"{shown}  (load {fmt_load(sample['load_before'])} / {fmt_load(sample.get('load_start'))} / "
              f"{fmt_load(sample['load_after'])})", flush=True)

    for rep in range(1, args.reps + 1):
        for workers in args.workers:
            for what in args.methods:
                current = {"sample": {"what": what, "control_planes": args.control_planes, "workers": workers,
                                      "rep": rep, "load_before": machine.load()}}
                logdir = workdir / f"{what}-{args.control_planes}+{workers}-rep{rep}"
                logdir.mkdir()
                try:
                    with BenchLab(args.control_planes, workers, workdir) as lab:
                        try:
                            run_configuration(args, lab, logdir, current, record)
                        except Exception:
                            with contextlib.suppress(Exception):  # diagnostics never hide the failure
                                keep_node_logs(lab, logdir)
                            raise
                except Exception as exc:  # pylint: disable=broad-except
                    traceback.print_exc()
                    if current["sample"] not in samples:
                        record(dict(current["sample"], seconds=None, error=str(exc).splitlines()[0][:300]))


def run_configuration(args, lab, logdir, current, record):
    """One configuration on its fresh lab: the floor or site.yml (then the re-run and --check on the re-run size).
    current["sample"] is the sample being measured (recorded by `record` when done)."""
    sample = current["sample"]
    sample["load_start"] = machine.load()  # the lab is up and prepared: the timed run starts
    if sample["what"] == "floor":
        result = floor.bootstrap(lab)
        sample.update(seconds=result["total"], phases=result["phases"], ssh_commands=result["ssh_commands"],
                      commands=result["commands"])
    else:
        seconds, _ = playbook(lab, SITE, logdir / "site.log", timing_path=logdir / "site.json")
        sample.update(seconds=seconds, timing=str(logdir / "site.json"),
                      same_init_config_as_floor=same_init_config(lab))
    record(sample)
    sample.update(settled_after_s=wait_settled(lab))
    sample.update(memory=machine.node_memory(lab), mem_available_mb=machine.mem_available_mb())
    if sample["what"] != "site" or sample["workers"] != args.rerun_workers:
        return
    for again, extra in (("rerun", ()), ("check", ("--check",))):
        sample = {key: value for key, value in sample.items() if key in ("control_planes", "workers", "rep")}
        sample.update(what=again, load_before=machine.load())
        sample["load_start"] = sample["load_before"]
        current["sample"] = sample
        seconds, recap = playbook(lab, SITE, logdir / f"{again}.log", extra, timing_path=logdir / f"{again}.json")
        sample.update(seconds=seconds, changed=sum(v[1] for v in recap.values()), timing=str(logdir / f"{again}.json"))
        record(sample)


def keep_node_logs(lab, logdir):
    """After a failure, before the lab goes down: each node's kubelet and containerd output, and the Nodes
    the API server knows, into logdir/nodes/."""
    target = logdir / "nodes"
    target.mkdir(exist_ok=True)
    for node in lab.nodes:
        for unit in ("kubelet", "containerd"):
            try:
                shutil.copy(lab.node_file(node.name, f"/var/log/lab/{unit}.service.log"),
                            target / f"{node.name}-{unit}.log")
            except OSError:
                continue
    result = lab.exec(lab.nodes[0].name, ["kubectl", "--kubeconfig", floor.ADMIN, "get", "nodes,pods", "-A", "-o",
                                          "wide"], check=False, timeout=60)
    (target / "kubectl-get.txt").write_text(result.stdout + result.stderr, encoding="utf-8")


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def kubeadm_seconds(sample):
    """Wall time of a bootstrap spent in kubeadm init and join, the cluster's own work, which the machine's load
    stretches alike for both methods: site.yml's init and join tasks (each task's wall time: the worker join task
    runs on all workers at once); the floor's kubeadm init and control plane join commands plus its slowest
    worker join (the workers join in parallel). None for other samples."""
    if sample["what"] == "site" and sample.get("tasks"):
        return sum(t["seconds"] for t in sample["tasks"]["tasks"] if t["action"] in KUBEADM_ACTIONS)
    if sample["what"] == "floor" and sample.get("commands"):
        serial = sum(seconds for _, what, seconds in sample["commands"] if what in KUBEADM_COMMANDS)
        return serial + max((seconds for _, what, seconds in sample["commands"] if what == "kubeadm join"),
                            default=0.0)
    return None


def summarize(samples):
    """{(what, control_planes, workers): {median, min, max, n, failed, changed, outside_kubeadm, load_before,
    load_after, memory}}.

    outside_kubeadm: median of the time outside kubeadm init and join (kubeadm_seconds) of each run.

    load_before / load_after: [min, max] of the 1-minute load average before the labs came up and after the
    runs; memory: median PSS and RSS (MB) of one control plane node and of one worker node, and of all nodes."""
    groups = {}
    for sample in samples:
        groups.setdefault((sample["what"], sample["control_planes"], sample["workers"]), []).append(sample)
    summary = {}
    for key, group in sorted(groups.items(), key=lambda kv: (kv[0][2], kv[0][0])):
        times = [s["seconds"] for s in group if s.get("seconds") is not None]
        row = {"median": statistics.median(times) if times else None, "min": min(times, default=None),
               "max": max(times, default=None), "n": len(times), "failed": len(group) - len(times),
               "changed": [s["changed"] for s in group if "changed" in s]}
        outside = [s["seconds"] - kubeadm_seconds(s) for s in group
                   if s.get("seconds") is not None and kubeadm_seconds(s) is not None]
        row["outside_kubeadm"] = statistics.median(outside) if outside else None
        for when in ("load_before", "load_after"):
            loads = [s[when][0] for s in group if s.get(when)]
            row[when] = [min(loads), max(loads)] if loads else None
        memory = memory_summary(group)
        if memory:
            row["memory"] = memory
        summary[key] = row
    return summary


def memory_summary(group):
    """Median memory of one node per role, and of the whole lab, over the samples that measured it."""
    measured = [s for s in group if s.get("memory")]
    if not measured:
        return None
    out = {}
    for role, prefix in (("control_plane", "cp"), ("worker", "worker")):
        nodes = [m for s in measured for name, m in s["memory"].items() if name.startswith(prefix)]
        if nodes:
            out[role] = {k: _median([n.get(k) for n in nodes]) for k in ("pss_mb", "rss_mb", "processes", "inotify")
                         if k in nodes[0]}
    out["all_nodes_pss_mb"] = _median([sum(m["pss_mb"] for m in s["memory"].values()) for s in measured])
    return out


def rep_ratios(samples, control_planes):
    """site/floor of each repetition (the two ran one after the other, in the same run), per size."""
    seconds = {(s.get("run", ""), s["what"], s["workers"], s["rep"]): s["seconds"] for s in samples
               if s["control_planes"] == control_planes and s.get("seconds")}
    out = {}
    for (run, what, workers, rep), site in sorted(seconds.items(), key=lambda kv: (kv[0][2], kv[0][0], kv[0][3])):
        base = seconds.get((run, "floor", workers, rep))
        if what == "site" and base:
            out.setdefault(f"overhead site/floor at {control_planes}+{workers}", []).append(round(site / base, 2))
    return out


def task_medians(samples, what="site", most=15):
    """{"3+0": [[play, task, median s], ...]}: the costliest tasks of `what` per size, each task's time summed
    within a run (a task of the serial join play runs once per control plane), median over the runs."""
    runs = {}
    for sample in samples:
        if sample["what"] != what or not sample.get("tasks"):
            continue
        per_task = {}
        for task in sample["tasks"]["tasks"]:
            name = (task["play"], task["name"])
            per_task[name] = per_task.get(name, 0.0) + task["seconds"]
        runs.setdefault(f"{sample['control_planes']}+{sample['workers']}", []).append(per_task)
    out = {}
    for size, per_run in runs.items():
        names = {name for run in per_run for name in run}
        rows = [[play, task, round(statistics.median(run.get((play, task), 0.0) for run in per_run), 2)]
                for play, task in names]
        out[size] = sorted(rows, key=lambda row: -row[2])[:most]
    return out


def phase_medians(samples):
    """{"3+0": {phase: median s}} of the floor."""
    runs = {}
    for sample in samples:
        if sample["what"] == "floor" and sample.get("phases"):
            runs.setdefault(f"{sample['control_planes']}+{sample['workers']}", []).append(sample["phases"])
    return {size: {phase: round(statistics.median(run[phase] for run in per_run if phase in run), 2)
                   for phase in per_run[0]} for size, per_run in runs.items()}


def fmt(seconds):
    return "-" if seconds is None else f"{seconds:.1f}"


def fmt_load(load):
    """1, 5 and 15 minute load averages as uptime prints them, or "-"."""
    return "-" if not load else ", ".join(f"{value:.2f}" for value in load)


def fmt_range(pair):
    return "-" if not pair else f"{pair[0]:.1f}-{pair[1]:.1f}"


def table(summary):
    """Markdown table: one row per measurement (outside kubeadm: median time outside kubeadm init/join; load =
    1-minute load average, min-max over the runs)."""
    lines = ["| what | control planes + workers | nodes | median s | min-max s | outside kubeadm s | runs | failed | "
             "load before | load after |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for (what, cps, workers), row in summary.items():
        lines.append(f"| {what} | {cps} + {workers} | {cps + workers} | {fmt(row['median'])} | "
                     f"{fmt(row['min'])}-{fmt(row['max'])} | {fmt(row.get('outside_kubeadm'))} | {row['n']} | "
                     f"{row['failed']} | {fmt_range(row.get('load_before'))} | {fmt_range(row.get('load_after'))} |")
    return "\n".join(lines)


def memory_table(summary):
    """Markdown table: memory (and inotify instances) of one node of each role on a finished cluster (medians),
    or '' when none was measured."""
    lines = ["| what | control planes + workers | control plane node PSS / RSS MB | worker node PSS / RSS MB | "
             "all nodes PSS MB | inotify instances per control plane / worker |", "|---|---|---|---|---|---|"]
    for (what, cps, workers), row in summary.items():
        memory = row.get("memory")
        if not memory:
            continue
        roles = [memory.get(role) for role in ("control_plane", "worker")]
        cells = [f"{m['pss_mb']:.0f} / {m['rss_mb']:.0f}" if m else "-" for m in roles]
        inotify = " / ".join(f"{m['inotify']:.0f}" if m and m.get("inotify") is not None else "-" for m in roles)
        lines.append(f"| {what} | {cps} + {workers} | {cells[0]} | {cells[1]} | {memory['all_nodes_pss_mb']:.0f} | "
                     f"{inotify} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def ratios(summary, control_planes):
    """The figures the targets are stated in (medians of the same run)."""
    def median(what, workers):
        row = summary.get((what, control_planes, workers))
        return row["median"] if row else None
    out = {}
    workers = sorted({k[2] for k in summary})
    for count in workers:
        site, base = median("site", count), median("floor", count)
        if site and base:
            out[f"overhead site/floor at {control_planes}+{count}"] = site / base
        site, base = (summary.get((what, control_planes, count), {}).get("outside_kubeadm")
                      for what in ("site", "floor"))
        if site and base:
            out[f"outside kubeadm site/floor at {control_planes}+{count}"] = site / base
    if len(workers) > 1 and median("site", workers[0]) and median("site", workers[-1]):
        out[f"site {control_planes}+{workers[-1]} / site {control_planes}+{workers[0]}"] = (
            median("site", workers[-1]) / median("site", workers[0]))
        if median("floor", workers[0]) and median("floor", workers[-1]):
            out[f"floor {control_planes}+{workers[-1]} / floor {control_planes}+{workers[0]}"] = (
                median("floor", workers[-1]) / median("floor", workers[0]))
    return out


def plot(summary, path):
    """PNG: time against number of nodes, vipadm against the floor (median, min-max bars)."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel
    figure, axes = pyplot.subplots(figsize=(7, 4.5), dpi=100)
    most_runs = max((row["n"] for row in summary.values()), default=0)
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
        for x, median, (_, row) in zip(nodes, medians, rows):
            if row["n"] < most_runs:  # fewer runs than the other points: say so
                axes.annotate(f"{row['n']} run" + ("s" if row["n"] > 1 else ""), (x, median), color=color,
                              textcoords="offset points", xytext=(-8, -12), ha="right", fontsize=8)
    axes.set_xticks(sorted({cps + workers for (_, cps, workers) in summary}))
    axes.set_xlabel("nodes (control planes + workers)")
    axes.set_ylabel("wall time, s (median, min-max)")
    axes.set_title("Bootstrap time on the lab's real nodes: vipadm against the floor")
    axes.set_ylim(bottom=0)
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, format="png")
    pyplot.close(figure)


def report_text(report, summary):
    """table.md: the table, the ratios (medians, and per repetition), memory, the load, where the time goes."""
    parts = [table(summary), "\n".join(f"* {k}: {v:.2f}" for k, v in report["ratios"].items())]
    if report["ratios_per_rep"]:
        parts.append("\n".join(f"* {k}, per repetition: {', '.join(f'{r:.2f}' for r in v)}"
                               for k, v in report["ratios_per_rep"].items()))
    for one in report["runs"]:
        about = one["machine"]
        parts.append(f"`{one['command']}` ({one['minutes']:.1f} min): load average (1, 5, 15 min) at the start "
                     f"{fmt_load(about.get('load_at_start'))}, at the end {fmt_load(about.get('load_at_end'))}.")
    if memory_table(summary):
        parts.append("Memory of a node's processes on the finished cluster (medians):\n\n" + memory_table(summary))
    for size, phases in report["floor_phases"].items():
        parts.append(f"Floor {size} (medians): " + ", ".join(f"{name} {sec:.1f} s" for name, sec in phases.items()))
    for size, rows in report["site_tasks"].items():
        parts.append(f"site.yml {size}, costliest tasks (median s, summed over the hosts' batches):\n\n"
                     "| play | task | s |\n|---|---|---|\n"
                     + "\n".join(f"| {play} | {task} | {sec:.1f} |" for play, task, sec in rows))
    return "\n\n".join(parts) + "\n"


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
    parser.add_argument("--report-from", nargs="+", metavar="RESULTS_JSON",
                        help="measure nothing: rebuild results.json, table.md and bench.png in --out from these "
                             "results.json files, their samples merged")
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


def write_report(out, runs):
    """results.json, table.md and bench.png in `out` from one or more runs ({"command", "machine", "minutes",
    "samples"}): the summary and ratios are over the samples of all of them."""
    for one in runs:
        for sample in one["samples"]:
            sample["run"] = one["command"]
    samples = [sample for one in runs for sample in one["samples"]]
    control_planes = samples[0]["control_planes"] if samples else 0
    summary = summarize(samples)
    report = {"command": "; ".join(one["command"] for one in runs), "machine": runs[0]["machine"],
              "minutes": sum(one["minutes"] for one in runs),
              "runs": [{k: one[k] for k in ("command", "machine", "minutes")} for one in runs],
              "summary": [dict(zip(("what", "control_planes", "workers"), k), **v) for k, v in summary.items()],
              "ratios": ratios(summary, control_planes), "ratios_per_rep": rep_ratios(samples, control_planes),
              "site_tasks": task_medians(samples), "floor_phases": phase_medians(samples), "samples": samples}
    (out / "results.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    (out / "table.md").write_text(report_text(report, summary), encoding="utf-8")
    plot(summary, out / "bench.png")
    print("\n" + report_text(report, summary) + f"\nresults: {out}/results.json, {out}/table.md, {out}/bench.png "
          f"({report['minutes']:.1f} min)")


def report_from(paths, out):
    """Rebuild the report from earlier results.json files (one run each, or reports of several), merged."""
    runs = []
    for path in paths:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
        for one in report.get("runs") or [report]:
            mine = [s for s in report["samples"] if s.get("run", one["command"]) == one["command"]]
            runs.append({"command": one["command"], "machine": one["machine"], "minutes": one["minutes"],
                         "samples": mine})
    out.mkdir(parents=True, exist_ok=True)
    write_report(out, runs)
    return 0


def main(argv=None):
    args = parse_args(argv)
    if args.report_from:
        return report_from(args.report_from, Path(args.out))
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
    about = machine.describe(VENV_BIN / "ansible")
    # The lab raises fs.inotify.max_user_instances for each lab it brings up; the largest size at once here.
    about["inotify_instances_in_use_at_start"] = limits.instances_in_use()
    about["inotify_max_user_instances"] = limits.ensure_for_nodes(args.control_planes, max(args.workers),
                                                                  log=lambda line: print(line, flush=True))
    samples = []
    try:
        measure(args, workdir, samples)
    except KeyboardInterrupt as exc:
        about["interrupted"] = str(exc) or "interrupted"
        print(f"bench: interrupted ({about['interrupted']}); writing what was measured", flush=True)
    about["load_at_end"] = machine.load()
    for sample in samples:  # task timings inline, so results.json stands alone when the logs are gone
        if sample.get("timing") and Path(sample["timing"]).exists():
            sample["tasks"] = json.loads(Path(sample["timing"]).read_text(encoding="utf-8"))
            del sample["timing"]
    write_report(out, [{"command": command.strip(), "machine": about, "minutes": (time.monotonic() - started) / 60,
                        "samples": samples}])
    if not args.keep_logs:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if any(s.get("seconds") is None for s in samples) else 0


if __name__ == "__main__":
    sys.exit(main())
