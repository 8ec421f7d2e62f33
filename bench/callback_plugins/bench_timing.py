# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible callback: the wall time of every task and play, written as JSON for bench/.

Enabled by bench/ with ANSIBLE_CALLBACK_PLUGINS=bench/callback_plugins and
ANSIBLE_CALLBACKS_ENABLED=bench_timing; writes to $VIPADM_BENCH_TIMING when the run ends.
A task's time runs from its start to the start of the next task (or the end of the play), which is
what it costs the run: the slowest host, plus the strategy's own work around it.
"""

from __future__ import annotations

DOCUMENTATION = """
name: bench_timing
type: aggregate
short_description: wall time of each task and play as JSON (vipadm benchmarks)
description: Writes the wall time of each task and play to the file named by VIPADM_BENCH_TIMING.
requirements: [enable in ANSIBLE_CALLBACKS_ENABLED]
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timing"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.started = time.monotonic()
        self.tasks = []
        self.plays = []
        self.current = None
        self.play = None

    def _close_task(self):
        if self.current is not None:
            self.current["seconds"] = time.monotonic() - self.current.pop("_start")
            self.tasks.append(self.current)
            self.current = None

    def _close_play(self):
        self._close_task()
        if self.play is not None:
            self.play["seconds"] = time.monotonic() - self.play.pop("_start")
            self.plays.append(self.play)
            self.play = None

    def v2_playbook_on_play_start(self, play):
        self._close_play()
        self.play = {"name": play.get_name(), "_start": time.monotonic(),
                     "since_start": time.monotonic() - self.started}

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._close_task()
        role = task._role.get_name() if task._role else ""  # pylint: disable=protected-access
        self.current = {"play": self.play["name"] if self.play else "", "role": role, "name": task.get_name(),
                        "action": task.action, "_start": time.monotonic(), "hosts": 0, "skipped": 0}

    v2_playbook_on_handler_task_start = v2_playbook_on_task_start

    def _count(self, skipped=False):
        if self.current is not None:
            self.current["hosts"] += 1
            self.current["skipped"] += int(skipped)

    def v2_runner_on_ok(self, result):
        self._count()

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._count()

    def v2_runner_on_skipped(self, result):
        self._count(skipped=True)

    def v2_runner_on_unreachable(self, result):
        self._count()

    def v2_playbook_on_stats(self, stats):
        self._close_play()
        path = os.environ.get("VIPADM_BENCH_TIMING")
        if not path:
            return
        with open(path, "w", encoding="utf-8") as out:
            json.dump({"total": time.monotonic() - self.started, "plays": self.plays, "tasks": self.tasks}, out,
                      indent=1)
