"""Makespan of a sweep submitted within a limit (QOS cklimit3: MaxSubmitJobsPerUser=3) vs the same
sweep with no limit, on the real local cluster, through the real `ck run` loop (run_experiment).

Workload (sleep jobs; `--scale` multiplies every duration): 6 runs, each a 4 s fine-tune and two
2 s evaluations chained after it (18 jobs). The node offers 2 CPUs x 4 (--oversubscribe), so
without a limit all runs train at once; under the limit at most 3 jobs are submitted at any
time, so the sweep takes longer: this bench prints how much. Polling every 0.5 s; makespan is
wall time of run_experiment from first submission to the last job seen ended.

Usage: scripts/local-slurm start && .venv/bin/python bench/slurm_throttle_makespan.py [--scale 1.0]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cruijff_kit.executors.slurm import SlurmExecutor, slurm_available

sys.path.insert(0, str(Path(__file__).parent))
from slurm_monitor_cpu import WEIGHTS  # noqa: E402  (a real one-tensor safetensors file)
from cruijff_kit.run.orchestrator import run_experiment

RUNS, TRAIN_S, EVAL_S = 6, 4.0, 2.0
QOS = "cklimit3"


def make(root: Path, scale: float) -> Path:
    exp = root / "exp"
    exp.mkdir(parents=True)
    (exp / "experiment_summary.md").write_text("# Experiment: throttle\n\n## Status\n\n(not started)\n")
    head = "#!/bin/bash\n#SBATCH --output=slurm-%j.out\n#SBATCH --mem=20M\n#SBATCH --oversubscribe\n"
    (root / "weights.safetensors").write_bytes(WEIGHTS)
    for r in range(RUNS):
        d = exp / f"run{r}"
        (d / "eval").mkdir(parents=True)
        out = root / "out" / d.name
        (d / "setup_finetune.yaml").write_text(f"output_dir: {out}\nepochs: 1\nnum_gpus: 0\n")
        (d / "finetune.slurm").write_text(
            head + f"sleep {TRAIN_S * scale:.2f}\nmkdir -p {out}/epoch_0 && cp {root}/weights.safetensors {out}/epoch_0/model.safetensors\n")
        for t in ("a", "b"):
            (d / "eval" / f"{t}_epoch0.slurm").write_text(
                head + f"sleep {EVAL_S * scale:.2f}\nmkdir -p logs && echo x > logs/{t}_epoch0.eval\n")
    return exp


def sweep(root: Path, scale: float, qos: str | None) -> tuple[float, int]:
    exp = make(root, scale)
    old = os.environ.pop("SBATCH_QOS", None)
    if qos:
        os.environ["SBATCH_QOS"] = qos
    try:
        lines: list[str] = []
        t0 = time.monotonic()
        report = run_experiment(exp, SlurmExecutor(exp), poll_s=0.5, out=lines.append)
        wall = time.monotonic() - t0
    finally:
        os.environ.pop("SBATCH_QOS", None)
        if old is not None:
            os.environ["SBATCH_QOS"] = old
    bad = [j.key for j in report.jobs if j.state != "COMPLETED"]
    if bad:
        raise SystemExit(f"jobs did not complete: {bad}")
    return wall, len(report.jobs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every sleep (default 1.0)")
    args = ap.parse_args()
    if not slurm_available():
        print("no SLURM cluster answers sinfo; start one: scripts/local-slurm start", file=sys.stderr)
        return 2
    qos = subprocess.run(["sacctmgr", "-n", "-P", "show", "qos", QOS, "format=name,maxsubmitpu"],
                         capture_output=True, text=True).stdout.strip()
    if not qos:
        print(f"QOS {QOS} missing: scripts/local-slurm start creates it", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="ck-bench-throttle-") as tmp:
        free, n = sweep(Path(tmp) / "free", args.scale, None)
        limited, _ = sweep(Path(tmp) / "limited", args.scale, QOS)
    print(f"workload: {RUNS} runs x (fine-tune {TRAIN_S * args.scale:g} s + 2 evals {EVAL_S * args.scale:g} s) "
          f"= {n} jobs; QOS {qos.replace('|', ' MaxSubmitJobsPerUser=')}")
    print(f"no limit:                {free:6.1f} s")
    print(f"limit 3 (ck throttles):  {limited:6.1f} s")
    print(f"throttled / unthrottled = {limited / free:.2f} (every job COMPLETED in both)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
