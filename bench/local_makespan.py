"""Local executor, one slot, the default poll interval (60 s): makespan of a sequence of short
jobs vs the sum of their durations. Goal: <= 1.1 x (a freed slot is filled when the job ends,
not at the next poll; before, each job started on a poll boundary: 4 jobs of 57 s in all took
4 minutes).

Workload: the run tests' bash stand-ins (tests/run/helpers.py: a real safetensors checkpoint,
a real inspect-ai log), 3 runs whose fine-tuning takes 4 s and whose evaluation takes 1.5 s,
each evaluation chained after its own training: 6 jobs, 16.5 s of job time, max-parallel 1.
Makespan is `ck run`'s wall time (planning and ledger writes included); job time is read from
the jobs' own start/end marks.

Usage: .venv/bin/python bench/local_makespan.py
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.run.helpers: the stand-in jobs

from cruijff_kit.executors.local import LocalExecutor  # noqa: E402
from cruijff_kit.run.orchestrator import run_experiment  # noqa: E402
from tests.run.helpers import FakeRun, launches, make_experiment  # noqa: E402

GOAL = 1.1
POLL_S = 60.0  # `ck run`'s default


def job_seconds(exp: Path) -> float:
    begun: dict[str, float] = {}
    total = 0.0
    for kind, key, _jid, t in launches(exp):
        if kind == "start":
            begun[key] = t
        else:
            total += t - begun.pop(key)
    return total


def main() -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        exp = make_experiment(Path(tmp), [FakeRun(f"r{i}", sleep=4.0, eval_sleep=1.5) for i in range(3)])
        t0 = time.perf_counter()
        report = run_experiment(exp, LocalExecutor(exp, max_parallel=1, gpus=[]), poll_s=POLL_S,
                                out=lambda _l: None)
        makespan = time.perf_counter() - t0
        if not all(j.ok for j in report.jobs):
            print("jobs did not all complete:", [(j.key, j.state) for j in report.jobs])
            return 1
        busy = job_seconds(exp)
    ratio = makespan / busy
    print(f"local makespan: {makespan:.1f} s for {len(report.jobs)} jobs of {busy:.1f} s in all "
          f"(poll {POLL_S:.0f} s, one slot)  ratio {ratio:.2f}  goal <= {GOAL}  "
          f"{'met' if ratio <= GOAL else 'NOT met'}  load average {os.getloadavg()[0]:.1f}")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
