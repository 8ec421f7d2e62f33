"""The benchmark harness (bench/): its arithmetic and plot without a lab, and a one-repetition smoke run
on a small lab so that `make bench` does not rot. Timings are never asserted (CI machines differ).

Cost: the unit part < 1 s; the smoke run (root only) on real components (containerd, the pinned kubelet and
control plane; components from the build cache): two 1 control plane + 1 worker labs, each prepared
(node_prep.yml), one bootstrapped by the floor, the other by site.yml, then re-run and --check. SMOKE_COST below.
"""

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from bench import run, slices

REPO = Path(__file__).resolve().parents[2]


def sample(what, seconds, workers=0, rep=1, **extra):
    return dict(what=what, control_planes=3, workers=workers, rep=rep, seconds=seconds, **extra)


def png_size(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_summary_takes_median_and_spread_and_counts_failures():
    samples = [sample("site", 30.0), sample("site", 10.0, rep=2), sample("site", 20.0, rep=3),
               sample("site", None, rep=4, error="boom"),
               sample("floor", 8.0), sample("floor", 12.0, rep=2),
               sample("rerun", 5.0, workers=10, changed=0)]
    summary = run.summarize(samples)
    site = summary[("site", 3, 0)]
    assert {k: site[k] for k in ("median", "min", "max", "n", "failed", "changed")} == {
        "median": 20.0, "min": 10.0, "max": 30.0, "n": 3, "failed": 1, "changed": []}
    assert summary[("floor", 3, 0)]["median"] == 10.0
    assert summary[("rerun", 3, 10)]["changed"] == [0]
    ratios = run.ratios(summary, 3)
    assert ratios == {"overhead site/floor at 3+0": 2.0}


def test_ratios_compare_the_largest_cluster_with_the_smallest():
    summary = run.summarize([sample("site", 20.0), sample("site", 50.0, workers=30), sample("site", 30.0, workers=10),
                             sample("floor", 10.0, workers=30)])
    ratios = run.ratios(summary, 3)
    assert ratios["site 3+30 / site 3+0"] == 2.5
    assert ratios["overhead site/floor at 3+30"] == 5.0


def test_table_lists_every_measurement_with_its_spread():
    text = run.table(run.summarize([sample("site", 12.0), sample("site", 14.0, rep=2), sample("floor", None,
                                                                                             error="x")]))
    assert "| site | 3 + 0 | 3 | 13.0 | 12.0-14.0 | - | 2 | 0 | - | - |" in text
    assert "| floor | 3 + 0 | 3 | - | --- | - | 0 | 1 | - | - |" in text


def test_load_before_and_after_each_configuration_are_kept_as_ranges():
    summary = run.summarize([sample("site", 12.0, load_before=[0.5, 1, 1], load_after=[3.25, 2, 1]),
                             sample("site", 14.0, rep=2, load_before=[2.0, 1, 1], load_after=[4.0, 2, 1])])
    assert summary[("site", 3, 0)]["load_before"] == [0.5, 2.0]
    assert summary[("site", 3, 0)]["load_after"] == [3.25, 4.0]
    assert "| 0.5-2.0 | 3.2-4.0 |" in run.table(summary)


def test_time_outside_kubeadm_takes_the_kubeadm_tasks_or_commands_off():
    tasks = {"tasks": [{"play": "init", "name": "init", "action": "vipadm.kubeadm.init", "seconds": 10.0},
                       {"play": "join", "name": "join", "action": "vipadm.kubeadm.join", "seconds": 20.0},
                       {"play": "pre", "name": "facts", "action": "vipadm.kubeadm.preflight_facts", "seconds": 3.0}]}
    commands = [["cp1", "kubeadm init", 9.0], ["cp2", "kubeadm join --control-plane", 18.0],
                ["worker1", "kubeadm join", 5.0], ["worker2", "kubeadm join", 7.0], ["cp1", "wait for the VIP", 1.0]]
    summary = run.summarize([sample("site", 40.0, tasks=tasks), sample("floor", 36.0, commands=commands)])
    assert summary[("site", 3, 0)]["outside_kubeadm"] == 10.0
    assert summary[("floor", 3, 0)]["outside_kubeadm"] == 2.0
    assert run.ratios(summary, 3)["outside kubeadm site/floor at 3+0"] == 5.0


def test_per_repetition_ratios_pair_floor_and_site_of_the_same_repetition():
    samples = [sample("floor", 10.0), sample("site", 15.0), sample("floor", 20.0, rep=2), sample("site", 22.0, rep=2)]
    assert run.rep_ratios(samples, 3) == {"overhead site/floor at 3+0": [1.5, 1.1]}


def test_memory_is_summarized_per_role_and_for_the_whole_lab():
    memory = {"cp1": {"pss_mb": 700.0, "rss_mb": 900.0, "processes": 40},
              "worker1": {"pss_mb": 100.0, "rss_mb": 200.0, "processes": 10},
              "worker2": {"pss_mb": 120.0, "rss_mb": 220.0, "processes": 12}}
    summary = run.summarize([sample("site", 20.0, workers=2, memory=memory)])
    row = summary[("site", 3, 2)]["memory"]
    assert row["control_plane"]["pss_mb"] == 700.0
    assert row["worker"] == {"pss_mb": 110.0, "rss_mb": 210.0, "processes": 11}
    assert row["all_nodes_pss_mb"] == 920.0
    assert "| site | 3 + 2 | 700 / 900 | 110 / 210 | 920 | - / - |" in run.memory_table(summary)


def test_task_medians_sum_a_task_over_the_batches_of_a_run():
    def tasks(*rows):
        return {"tasks": [{"play": play, "name": name, "seconds": sec} for play, name, sec in rows]}
    samples = [sample("site", 20.0, tasks=tasks(("Step 7", "join", 3.0), ("Step 7", "join", 4.0),
                                                ("Pre", "facts", 1.0))),
               sample("site", 22.0, rep=2, tasks=tasks(("Step 7", "join", 5.0), ("Step 7", "join", 4.0)))]
    assert run.task_medians(samples) == {"3+0": [["Step 7", "join", 8.0], ["Pre", "facts", 0.5]]}


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    summary = run.summarize([sample("floor", 10.0), sample("site", 15.0), sample("floor", 20.0, workers=10),
                             sample("site", 24.0, workers=10), sample("check", 4.0, workers=10)])
    run.plot(summary, tmp_path / "bench.png")
    assert png_size(tmp_path / "bench.png") == (700, 450)


@pytest.mark.parametrize(("nodes", "prefix"), [(3, 27), (19, 27), (20, 26), (33, 26), (51, 26), (52, 25), (243, 24)])
def test_a_lab_gets_the_smallest_slice_that_holds_its_nodes_and_the_vip(nodes, prefix):
    assert slices.prefix_for(nodes) == prefix


def test_too_many_nodes_are_refused_before_anything_runs():
    with pytest.raises(SystemExit):
        run.parse_args(["--workers", "250"])


@pytest.mark.lab
def test_smoke_one_repetition_on_a_small_lab(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    pytest.importorskip("matplotlib")
    result = subprocess.run([sys.executable, "-m", "bench", "--reps", "1", "--control-planes", "1", "--workers", "1",
                             "--rerun-workers", "1", "--out", str(tmp_path)], cwd=REPO, capture_output=True,
                            text=True, timeout=1800, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    report = json.loads((tmp_path / "results.json").read_text())
    measured = {s["what"]: s for s in report["samples"]}
    assert sorted(measured) == ["check", "floor", "rerun", "site"]
    assert all(s["seconds"] > 0 for s in measured.values())
    assert measured["rerun"]["changed"] == 0, "the re-run of site.yml changed something"
    assert measured["check"]["changed"] == 0, "--check on the finished cluster reports changes"
    assert any(task["action"] == "vipadm.kubeadm.init" for task in measured["site"]["tasks"]["tasks"])
    assert measured["site"]["same_init_config_as_floor"], "site.yml and the floor ran kubeadm init with other configs"
    assert sorted(measured["floor"]["memory"]) == sorted(measured["site"]["memory"]) == ["cp1", "worker1"]
    assert all(len(s["load_before"]) == len(s["load_after"]) == 3 for s in measured.values())
    assert "overhead site/floor at 1+1" in report["ratios"]
    assert png_size(tmp_path / "bench.png")[0] > 0
    assert "| site | 1 + 1 | 2 |" in (tmp_path / "table.md").read_text()
