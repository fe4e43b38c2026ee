"""`make demo`: the bundled example end to end on CPU with the local executor.

design -> scaffold -> run (train, then evaluate each run) -> results table, on a tiny
Qwen2.5-style model made here (no hub) and the capitalization blueprint: runs train on the
train words and are evaluated on the held-out test words (distinct words), against the base
model as control. Re-running resumes: finished jobs are not redone, and a finished demo
submits nothing.

    python -m cruijff_kit.demo [--out DIR] [--fresh] [--max-parallel N]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from .errors import CkError
from .state import layout

PACKAGE = Path(__file__).resolve().parent


def _settings() -> dict:
    from .blueprints.capitalization import demo as d

    return {
        "name": "cap_demo",
        "model": d.MODEL,
        "data": d.DATA,
        "ranks": d.GRID["lora_rank"],
        "lrs": d.GRID["learning_rate"],
        "batch_size": d.TRAINING["batch_size"],
        "epochs": d.TRAINING["epochs"],
        "system_prompt": d.SYSTEM_PROMPT,
        "config": {
            "Evaluation split": d.EVAL_SPLIT,  # held-out words
            "Eval max tokens": d.EVAL_MAX_TOKENS,
            "Warmup steps": d.TRAINING["lr_warmup_steps"],
            "Weight decay": d.TRAINING["weight_decay"],
        },
    }


def _step(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


def run_demo(out: Path, *, fresh: bool = False, max_parallel: int = 1) -> int:
    from .blueprints.capitalization.generate import generate
    from .cli import main as ck
    from .tiny_model import make_tiny_model

    s = _settings()
    out = out.resolve()
    exp = out / s["name"]
    if fresh and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()

    # The demo's own claude.local.md: jobs use the Python running the demo.
    local = out / "claude.local.md"
    local.write_text(f"# written by the demo\n- venv: {sys.prefix}\n- slurm_time: 00:30:00\n- slurm_mem: 4G\n- slurm_cpus: 1\n")
    os.environ["CK_LOCAL_CONFIG"] = str(local)
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    _step("1. tiny model + capitalization data (reproducible, offline)")
    model = out / "models" / "tiny-qwen"
    if not (model / "model.safetensors").exists():
        make_tiny_model(model, **s["model"])
    data = out / "data" / "capitalization.json"
    if not data.exists():
        generate(data, **s["data"])
    print(f"model: {model}\ndata:  {data}")

    _step("2. design-experiment")
    task = PACKAGE / "blueprints" / "capitalization" / "inspect_task.py"
    if not (exp / layout.SUMMARY).exists():
        argv = ["design", str(exp), "--name", s["name"], "--model", f"tiny-qwen={model}", "--dataset", str(data),
                "--ranks", ",".join(map(str, s["ranks"])), "--lrs", ",".join(map(str, s["lrs"])),
                "--batch-sizes", str(s["batch_size"]), "--epochs", str(s["epochs"]), "--gpus", "0",
                "--task", f"capitalization={task}@{s['epochs'] - 1}", "--system-prompt", s["system_prompt"]]
        for key, value in s["config"].items():
            argv += ["--set", f"{key}={value}"]
        if ck(argv):
            return 2
    else:
        print(f"{exp / 'experiment_summary.md'} exists: keeping it")

    _step("3. scaffold-experiment")
    if ck(["scaffold", str(exp)]):
        return 2

    _step("4. run-experiment (local executor: train, then evaluate each run)")
    rc = ck(["run", str(exp), "--executor", "local", "--poll", "1", "--max-parallel", str(max_parallel)])

    _step("5. results")
    ck(["analyze", str(exp)])  # partial results are reported, never fatal
    print(f"\nDemo finished in {time.monotonic() - t0:.0f}s (exit {rc}).")
    print(f"Experiment:   {exp}\n  plan:       {exp / 'experiment_summary.md'}\n"
          f"  logs:       {exp}/*.log, {exp}/<run>/slurm-*.out\n"
          f"  checkpoints:{exp}/<run>/checkpoints/epoch_N\n  eval logs:  {exp}/<run>/eval/logs/*.eval"
          f"  (samples in the terminal: ck analyze {exp} --samples RUN)")
    return rc


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cruijff_kit.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="demo-output",
                    help="where the demo writes (default: demo-output/ in the current directory)")
    ap.add_argument("--fresh", action="store_true", help="delete the previous demo first")
    ap.add_argument("--max-parallel", type=int, default=1)
    args = ap.parse_args(argv)
    try:
        return run_demo(Path(args.out), fresh=args.fresh, max_parallel=args.max_parallel)
    except CkError as err:
        print(f"demo: error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
