"""The lab's share of the machine's limits: fs.inotify.max_user_instances (no root needed: a file stands in)."""

from __future__ import annotations

import pytest

from lab.nodes import limits


@pytest.fixture
def max_user_instances(tmp_path, monkeypatch):
    path = tmp_path / "max_user_instances"
    monkeypatch.setattr(limits, "MAX_USER_INSTANCES", path)
    return path


def test_the_estimate_counts_what_runs_and_the_nodes_about_to_start_with_a_margin():
    assert limits.instances_needed(0, 0, in_use=65) == 65
    # 3 control planes and 10 workers hold about 3 x 17 + 10 x 9 = 141 (measured by the benchmark)
    assert limits.instances_needed(3, 10, in_use=65) == 65 + 2 * 141


def test_raised_when_lower_with_one_line(max_user_instances):
    max_user_instances.write_text("128\n")
    lines = []
    assert limits.ensure_instances(347, log=lines.append) == (128, 347)
    assert max_user_instances.read_text() == "347\n"
    assert len(lines) == 1 and "raised from 128 to 347" in lines[0]


def test_never_lowered_and_nothing_said(max_user_instances):
    max_user_instances.write_text("1024\n")
    lines = []
    assert limits.ensure_instances(347, log=lines.append) == (1024, 1024)
    assert max_user_instances.read_text() == "1024\n" and lines == []


def test_the_machine_count_sees_this_process_inotify_instance():
    import ctypes
    import os

    libc = ctypes.CDLL(None, use_errno=True)
    before = limits.instances_held(os.getpid())
    fd = libc.inotify_init()
    assert fd >= 0
    try:
        assert limits.instances_held(os.getpid()) == before + 1
    finally:
        os.close(fd)
