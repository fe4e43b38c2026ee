"""Scheduler calls per poll cycle of SlurmExecutor at N = 10, 100, 1000 jobs. Goal: <= 2.

No real cluster is needed (nor used): FAKE `squeue` and `sacct` executables are put first on
PATH. They append one line per invocation to a counter file (so the count is of processes
really started, not of the executor's own bookkeeping) and print synthetic rows in exactly the
layout SlurmExecutor asks for. The synthetic workload per N:

- a third of the jobs are "old": slurmctld has forgotten them, only sacct knows them (COMPLETED
  or FAILED), as after MinJobAge on a real cluster;
- the rest are live and finish over the cycles: job i is PENDING until cycle i % 4, RUNNING
  until cycle i % 7 + 2, then COMPLETED (every 10th FAILED with exit code 3), shown by
  `squeue --states=all` with its exit status.

Usage: .venv/bin/python bench/slurm_poll_calls.py
"""
from __future__ import annotations

import json
import os
import stat
import sys
import tempfile
from pathlib import Path

from cruijff_kit.executors.slurm import SlurmExecutor

GOAL = 2
FAKE = r'''#!{python}
import json, os, sys
cmd = os.path.basename(sys.argv[0])
with open(os.environ["FAKE_SLURM_COUNT"], "a") as f:
    f.write(cmd + "\n")
world = json.load(open(os.environ["FAKE_SLURM_WORLD"]))
cycle = world["cycle"]
ids = next(a.split("=", 1)[1].split(",") for a in sys.argv if a.startswith("--jobs="))
out = []
for j in ids:
    i = int(j)
    old = i % 3 == 0
    if cmd == "squeue" and not old:
        if cycle < i % 4:
            out.append(f"{{j}}|PENDING|Priority|N/A|N/A|0|/w/slurm-%j.out|")
        elif cycle < i % 7 + 2:
            out.append(f"{{j}}|RUNNING|None|2026-01-01T00:00:00|NONE|0|/w/slurm-%j.out|")
        elif i % 10 == 1:
            out.append(f"{{j}}|FAILED|NonZeroExitCode|2026-01-01T00:00:00|2026-01-01T00:09:00|768|/w/slurm-%j.out|")
        else:
            out.append(f"{{j}}|COMPLETED|None|2026-01-01T00:00:00|2026-01-01T00:09:00|0|/w/slurm-%j.out|")
    elif cmd == "sacct" and old:
        state, code = ("FAILED", "3:0") if i % 10 == 0 else ("COMPLETED", "0:0")
        out.append(f"{{j}}|{{state}}|{{code}}|2026-01-01T00:00:00|2026-01-01T00:09:00|None|/w")
print("\n".join(out))
'''


def install_fakes(bin_dir: Path) -> None:
    for name in ("squeue", "sacct"):
        p = bin_dir / name
        p.write_text(FAKE.format(python=sys.executable))
        p.chmod(p.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def bench(n: int, work: Path) -> dict:
    count, world = work / f"count-{n}", work / f"world-{n}.json"
    count.write_text("")
    os.environ["FAKE_SLURM_COUNT"], os.environ["FAKE_SLURM_WORLD"] = str(count), str(world)
    ex = SlurmExecutor(work)
    ids = [str(i) for i in range(1, n + 1)]
    per_cycle: list[int] = []
    cycle = 0
    while True:
        world.write_text(json.dumps({"cycle": cycle}))
        before = len(count.read_text().split())
        infos = ex.poll(ids)
        per_cycle.append(len(count.read_text().split()) - before)
        cycle += 1
        if all(i.state.terminal for i in infos.values()):
            break
    failed = sum(i.exit_code == 3 for i in infos.values())
    assert ex.scheduler_calls == sum(per_cycle), "executor.calls disagrees with the processes started"
    return {"n": n, "cycles": cycle, "max": max(per_cycle), "mean": sum(per_cycle) / cycle,
            "per_cycle": per_cycle, "failed_seen": failed}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="ck-bench-poll-") as tmp:
        work = Path(tmp)
        install_fakes(work)
        os.environ["PATH"] = f"{work}{os.pathsep}{os.environ['PATH']}"
        print("SlurmExecutor.poll: scheduler processes (squeue + sacct) started per poll cycle")
        print("fake squeue/sacct on PATH (synthetic rows; see the docstring); goal <= 2 per cycle")
        print(f"{'jobs':>6} {'cycles':>6} {'max/cycle':>9} {'mean/cycle':>10} {'max/goal':>8} {'per-job query':>13}  calls per cycle")
        ok = True
        for n in (10, 100, 1000):
            r = bench(n, work)
            ok &= r["max"] <= GOAL
            print(f"{n:>6} {r['cycles']:>6} {r['max']:>9} {r['mean']:>10.2f} {r['max'] / GOAL:>8.2f} "
                  f"{n:>13}  {r['per_cycle']}")
        print(f"goal (<= {GOAL} calls per cycle whatever N): {'met' if ok else 'NOT met'}; "
              "'per-job query' is what one squeue per job would cost per cycle")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
