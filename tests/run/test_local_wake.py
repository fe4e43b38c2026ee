"""The local executor fills a freed slot when a job ends, not at the next poll: with `ck run`'s
default poll interval (60 s) a chain of short jobs finishes in about the sum of their durations.
(The makespan ratio itself is a benchmark: bench/local_makespan.py.)"""
from __future__ import annotations

import time

from cruijff_kit.executors.core import JobSpec
from cruijff_kit.executors.local import LocalExecutor
from cruijff_kit.run.orchestrator import run_experiment

from .helpers import FakeRun, launches, make_experiment

DEFAULT_POLL_S = 60.0


def test_next_job_starts_when_the_slot_frees_not_at_the_next_poll(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("a", sleep=0.5, eval_sleep=0.2),
                                     FakeRun("b", sleep=0.5, eval_sleep=0.2)])
    t0 = time.monotonic()
    report = run_experiment(exp, LocalExecutor(exp, max_parallel=1, gpus=[]), poll_s=DEFAULT_POLL_S,
                            out=lambda _l: None)
    elapsed = time.monotonic() - t0
    assert [j.state for j in report.jobs] == ["COMPLETED"] * 4
    # four jobs one after another on one slot: a poll-bound monitor needs >= 3 intervals (180 s)
    assert elapsed < DEFAULT_POLL_S, f"{elapsed:.1f} s: the monitor waited for a poll"
    marks = launches(exp)
    ends = sorted(t for kind, _k, _j, t in marks if kind == "end")
    begins = sorted(t for kind, _k, _j, t in marks if kind == "start")
    # each job after the first started within a few seconds of the previous one's end
    gaps = [b - e for e, b in zip(ends, begins[1:])]
    assert max(gaps) < 10, gaps


def test_wait_returns_at_once_for_a_job_that_already_ended(tmp_path):
    exp = make_experiment(tmp_path, [FakeRun("a", sleep=0.1, tasks=())])
    ex = LocalExecutor(exp, max_parallel=1, gpus=[])
    jid = ex.submit(JobSpec(key="a/finetune", script=exp / "a" / "finetune.slurm", kind="finetune", run="a"))
    ex.poll([jid])  # starts it
    t0 = time.monotonic()
    ex.wait([jid], 30)  # wakes when the job's process ends
    assert time.monotonic() - t0 < 20
    deadline = time.monotonic() + 10
    while not ex.poll([jid])[jid].state.terminal and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ex.poll([jid])[jid].state.value == "COMPLETED"
    t0 = time.monotonic()
    ex.wait([jid], 30)  # nothing running: no 30 s sleep
    assert time.monotonic() - t0 < 2
