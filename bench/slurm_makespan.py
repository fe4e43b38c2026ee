"""Makespan on the real local cluster: per-run chaining vs the seeds' barrier. Goal: >= 20 % shorter.

Workload (sleep jobs; `--scale` multiplies every duration): 4 runs whose fine-tuning takes
2, 2, 2 and 12 s, each followed by 6 evaluations of 3 s (epochs x tasks, as the seeds evaluate).

- barrier (the seeds): submit all fine-tuning, wait until every one has ended, then submit all
  evaluations and wait for them;
- chaining (ck run): submit every run's fine-tuning and, at once, its evaluations with
  `--dependency=afterok:<its training>` (SlurmExecutor.submit(spec, after=...)).

Both go through SlurmExecutor and poll every 0.5 s; makespan is wall time from the first
submission until the poll that sees every job finished. The cluster is scripts/local-slurm:
its partition lets jobs that ask share cores (--oversubscribe, 4 per core), so a 2-core machine
offers 8 slots: scarce compared with the 28 jobs, as GPUs are on a real cluster. Jobs of other
users on the same cluster take slots too, so run it when the cluster is quiet.

Usage: scripts/local-slurm start && .venv/bin/python bench/slurm_makespan.py [--scale 1.0]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cruijff_kit.executors.core import JobSpec
from cruijff_kit.executors.slurm import SlurmExecutor, slurm_available

TRAIN_S = [2, 2, 2, 12]
EVALS_PER_RUN = 6
EVAL_S = 3


def script(path: Path, seconds: float) -> JobSpec:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/bash\n#SBATCH --output=slurm-%j.out\n#SBATCH --mem=20M\n"
                    f"#SBATCH --oversubscribe\nsleep {seconds:.2f}\n")
    run = path.parent.name if path.parent.name != "eval" else path.parent.parent.name
    return JobSpec(key=f"{run}/{path.stem}", script=path, kind="eval" if "eval" in path.parts else "finetune", run=run)


def wait(ex: SlurmExecutor, ids: list[str]) -> None:
    while True:
        infos = ex.poll(ids)
        if all(i.state.terminal for i in infos.values()):
            bad = {j: i.state.value for j, i in infos.items() if not i.state.ok}
            if bad:
                raise SystemExit(f"jobs did not complete: {bad}")
            return
        time.sleep(0.5)


def workload(root: Path, scale: float) -> list[tuple[JobSpec, list[JobSpec]]]:
    runs = []
    for r, t in enumerate(TRAIN_S):
        d = root / f"run{r}"
        train = script(d / "finetune.slurm", t * scale)
        evals = [script(d / "eval" / f"task_epoch{e}.slurm", EVAL_S * scale) for e in range(EVALS_PER_RUN)]
        runs.append((train, evals))
    return runs


def barrier(root: Path, scale: float) -> float:
    ex = SlurmExecutor(root)
    runs = workload(root / "barrier", scale)
    t0 = time.monotonic()
    trains = [ex.submit(t) for t, _ in runs]
    wait(ex, trains)
    evals = [ex.submit(e) for _, es in runs for e in es]
    wait(ex, evals)
    return time.monotonic() - t0


def chaining(root: Path, scale: float) -> float:
    ex = SlurmExecutor(root)
    runs = workload(root / "chain", scale)
    t0 = time.monotonic()
    ids = []
    for train, evals in runs:
        tid = ex.submit(train)
        ids += [tid] + [ex.submit(e, after=tid) for e in evals]
    wait(ex, ids)
    return time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every sleep (default 1.0)")
    args = ap.parse_args()
    if not slurm_available():
        print("no SLURM cluster answers sinfo; start one: scripts/local-slurm start", file=sys.stderr)
        return 2
    slots = subprocess.run(["sinfo", "--noheader", "--format=%c %h"], capture_output=True, text=True).stdout.split()
    with tempfile.TemporaryDirectory(prefix="ck-bench-makespan-") as tmp:
        root = Path(tmp)
        b = barrier(root, args.scale)
        c = chaining(root, args.scale)
    shorter = 1 - c / b
    print(f"workload: training {[t * args.scale for t in TRAIN_S]} s, {EVALS_PER_RUN} evals x {EVAL_S * args.scale} s per run; "
          f"node CPUs / oversubscribe: {' '.join(slots)}")
    print(f"barrier (seeds: all training, then all evaluation): {b:6.1f} s")
    print(f"chaining (eval afterok its own training):           {c:6.1f} s")
    print(f"chaining / barrier = {c / b:.2f}  ({shorter:.0%} shorter; goal >= 20 %: {'met' if shorter >= 0.2 else 'NOT met'})")
    return 0 if shorter >= 0.2 else 1


if __name__ == "__main__":
    sys.exit(main())
