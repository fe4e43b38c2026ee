"""Scaffold an 8-run and a 1,000-run sweep; print seconds and runs/s (goal: 8 runs <= 0.5 s,
1,000 runs <= 2 s on an idle 2-core machine). Measured in one process, after imports.
Durability: setup_finetune.yaml, finetune.yaml and the scripts are written by temp file + rename
(never half written) without fsync: they are regenerated from the plan by `ck scaffold`, so a
crash costs a re-run, not data; the ledger (job ids) is the file that must survive a crash."""
import os
import sys
import tempfile
import time
from pathlib import Path

from cruijff_kit.experiment.design import DesignSpec, design_experiment
from cruijff_kit.experiment.model import Evaluation
from cruijff_kit.experiment.render import render_summary
from cruijff_kit.scaffold.orchestrator import scaffold_experiment

TASK = 'from inspect_ai import task\n\n@task\ndef capitalization(data_path: str, split: str = "test"):\n    ...\n'


def bench(root: Path, ranks: list[int], lrs: list[float]) -> tuple[int, float]:
    exp_dir = root / f"sweep{len(ranks) * len(lrs)}"
    exp_dir.mkdir()
    (exp_dir / "task.py").write_text(TASK)
    spec = DesignSpec(name="sweep", models=[("Llama-3.2-1B-Instruct", "/models/Llama-3.2-1B-Instruct")],
                      dataset="/data/words.json", grid={"lora_rank": ranks, "learning_rate": lrs},
                      tasks=[Evaluation("capitalization", str(exp_dir / "task.py"), (0,))],
                      experiment_dir=str(exp_dir))
    (exp_dir / "experiment_summary.md").write_text(render_summary(design_experiment(spec)))
    t0 = time.perf_counter()
    report = scaffold_experiment(exp_dir)
    dt = time.perf_counter() - t0
    assert not report.failures, report.failures[:1]
    return len(report.torchtune), dt


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CK_LOCAL_CONFIG"] = str(Path(tmp) / "claude.local.md")
        (Path(tmp) / "claude.local.md").write_text("- slurm_partition: gpu\n")
        bench(Path(tmp) / "warm", [8], [1e-5]) if (Path(tmp) / "warm").mkdir() is None else None
        for ranks, lrs, goal in (([8, 16, 32, 64], [1e-5, 5e-5], 0.5),
                                 (list(range(1, 101)), [1e-5 * (i + 1) for i in range(10)], 2.0)):
            n, dt = bench(Path(tmp), ranks, lrs)
            print(f"{n:5d} runs: {dt:7.3f} s  {n / dt:8.1f} runs/s  goal <= {goal} s  ratio {dt / goal:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
