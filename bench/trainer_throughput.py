"""TRL + PEFT vs torchtune on the same tiny model, data and settings, on CPU: training tokens/s and
the training process's peak RSS, each trainer measured by what it records itself (the loss log's
tokens_per_second_per_gpu, logs/ck_peak_memory.json), read through state/resources.py as
`ck status` and the report read them. One experiment varies `Model preparation`, so both runs
come from one plan: same model, data, seed, LoRA rank, learning rate, batch size and steps.
Goal: TRL >= 0.8 x torchtune tokens/s, peak RSS <= 1.2 x.

Usage: .venv/bin/python bench/trainer_throughput.py [--steps 30]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from cruijff_kit.blueprints.capitalization.generate import generate
from cruijff_kit.cli import main as ck
from cruijff_kit.run.plan import plan_experiment
from cruijff_kit.state.ledger import Ledger
from cruijff_kit.state.resources import job_resources
from cruijff_kit.tiny_model import make_tiny_model

TOKENS_GOAL, RSS_GOAL = 0.8, 1.2


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30, help="optimizer steps per trainer")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = make_tiny_model(root / "model")
        data = generate(root / "data.json", n=200)
        (root / "claude.local.md").write_text(f"- venv: {sys.prefix}\n")
        os.environ["CK_LOCAL_CONFIG"] = str(root / "claude.local.md")
        exp = root / "exp"
        rc = ck(["design", str(exp), "--model", f"tiny={model}", "--dataset", str(data), "--ranks", "8",
                 "--lrs", "1e-3", "--batch-sizes", "4", "--epochs", "1", "--gpus", "0", "--no-control",
                 "--vary", "Model preparation=torchtune,trl", "--set", f"Max steps per epoch={args.steps}"])
        rc = rc or ck(["scaffold", str(exp)]) or ck(["run", str(exp), "--executor", "local", "--only", "torchtune"])
        if rc:
            print(f"the experiment did not run (exit {rc})")
            return 1
        plan = plan_experiment(exp)
        used = job_resources(plan, Ledger(exp).jobs())
        by_trainer = {}
        for job in plan.finetunes:
            trainer = "trl" if "trl" in job.run else "torchtune"
            by_trainer[trainer] = used.get(job.key)
    tt, trl = by_trainer.get("torchtune"), by_trainer.get("trl")
    if not (tt and trl and tt.tokens_per_s and trl.tokens_per_s and tt.max_rss_bytes and trl.max_rss_bytes):
        print(f"a trainer recorded no throughput or memory: torchtune {tt}, trl {trl}")
        return 1
    tok, rss = trl.tokens_per_s / tt.tokens_per_s, trl.max_rss_bytes / tt.max_rss_bytes
    print(f"torchtune: {tt.tokens_per_s:.0f} tokens/s, peak RSS {tt.max_rss_bytes / 2**20:.0f} MiB, {tt.elapsed_s:.0f} s")
    print(f"trl:       {trl.tokens_per_s:.0f} tokens/s, peak RSS {trl.max_rss_bytes / 2**20:.0f} MiB, {trl.elapsed_s:.0f} s")
    print(f"TRL / torchtune: tokens/s {tok:.2f} (goal >= {TOKENS_GOAL}), peak RSS {rss:.2f} (goal <= {RSS_GOAL})  "
          f"load average {os.getloadavg()[0]:.1f}")
    return 0 if tok >= TOKENS_GOAL and rss <= RSS_GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
