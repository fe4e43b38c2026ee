"""Evaluation job overhead: wall time of one eval job (the ck eval launcher, 3 tasks (the splits of 40 words) on
an adapter-only epoch of the tiny model, one model load) with ck's batching vs inspect's own.
Goal: ck's batching <= 0.8 x inspect's (inspect collects requests until 2 s pass without a new one
and polls each result once a second: about 3 s idle per task, whatever the model).

Also reported: the same job's CPU seconds, and the merge of the adapter-only epoch (without
torchtune vs torchtune's own), both ratios from this one run.

Usage: .venv/bin/python bench/eval_overhead.py
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASK = ROOT / "tools/cruijff_kit/blueprints/capitalization/inspect_task.py"
GOAL = 0.8
JOB = """import sys
from cruijff_kit.evaluate import batching, hf_model  # noqa: F401  (installs ck's batching)
if sys.argv[1] == "inspect":
    batching.uninstall()
from cruijff_kit.evaluate.launch import main
raise SystemExit(main(sys.argv[2:]))
"""


def adapter_epoch(tmp: Path) -> tuple[Path, Path]:
    """A real adapter-only epoch: the tiny model fine-tuned one short epoch by ck's torchtune recipe."""
    from cruijff_kit.blueprints.capitalization.generate import generate
    from cruijff_kit.tiny_model import make_tiny_model

    model = make_tiny_model(tmp / "model")
    data = generate(tmp / "data.json", n=40)
    (tmp / "claude.local.md").write_text(f"- venv: {sys.prefix}\n")
    env = {**os.environ, "CK_LOCAL_CONFIG": str(tmp / "claude.local.md"), "OMP_NUM_THREADS": "1"}
    ck = [sys.executable, "-m", "cruijff_kit"]
    exp = tmp / "exp"
    for args in (["design", exp, "--model", f"tiny={model}", "--dataset", data, "--epochs", "1", "--gpus", "0",
                  "--no-control", "--set", "Max steps per epoch=2", "--task", f"cap={TASK}@last"],
                 ["scaffold", exp], ["run", exp, "--executor", "local", "--only", "torchtune", "--poll", "1"]):
        subprocess.run([*ck, *map(str, args)], env=env, check=True, capture_output=True)
    epoch = next(exp.glob("*/checkpoints/epoch_0"))
    return epoch, data


def one_job(how: str, epoch: Path, data: Path, logs: Path) -> tuple[float, float]:
    """(wall s, CPU s) of one eval job."""
    tasks = []
    for name, split in (("t1", "test"), ("t2", "validation"), ("t3", "train")):
        tasks += ["--task", name, f"{TASK}@capitalization", json.dumps({"data_path": str(data), "split": split})]
    argv = [sys.executable, "-c", JOB, how, "--model-dir", str(epoch), "--prompt-format", "chatml", *tasks,
            "--", "--max-tokens", "4", "--log-dir", str(logs), "--display", "none"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def merge_seconds(epoch: Path, out: Path) -> tuple[float, float]:
    """(without torchtune, torchtune's) seconds for the epoch's merge, each in a fresh process."""
    code = """import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from cruijff_kit.finetune import merge
from cruijff_kit.finetune.models import resolve_model
from cruijff_kit.finetune.prompt_format import read_checkpoint_record
e = Path(sys.argv[2]); base = Path(read_checkpoint_record(e)["base_model"])
cfg = json.loads((e / "adapter_config.json").read_text()); spec = resolve_model(str(base))
args = (base, spec.checkpointer, e / "adapter_model.pt", int(cfg["r"]), float(cfg["lora_alpha"]))
if sys.argv[1] == "renamed":
    assert merge.merge_renamed(*args, Path(sys.argv[3]) / "m") is not None
else:
    merge.merge_with_torchtune(*args, Path(sys.argv[3]))
print(time.perf_counter() - t0)
"""
    times = []
    for how in ("renamed", "torchtune"):
        r = subprocess.run([sys.executable, "-c", code, how, str(epoch), str(out / how)], check=True,
                           capture_output=True, text=True)
        times.append(float(r.stdout.split()[-1]))
    return times[0], times[1]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        epoch, data = adapter_epoch(tmp)
        runs = {"ck": [], "inspect": []}
        for i in range(2):  # interleaved, so drift in machine load hits both alike
            for how in runs:
                runs[how].append(one_job(how, epoch, data, tmp / f"logs-{how}-{i}"))
        ours, theirs = merge_seconds(epoch, tmp)
    ck_wall = min(w for w, _ in runs["ck"])
    in_wall = min(w for w, _ in runs["inspect"])
    ratio = ck_wall / in_wall
    print(f"eval job, 3 tasks (40 words in all): ck batching {ck_wall:.1f} s "
          f"(CPU {min(c for _, c in runs['ck']):.1f} s), inspect's {in_wall:.1f} s "
          f"(CPU {min(c for _, c in runs['inspect']):.1f} s): ratio {ratio:.2f} (goal <= {GOAL})")
    print(f"merge of the adapter-only epoch in a fresh process: {ours:.1f} s without torchtune, "
          f"{theirs:.1f} s with torchtune's ({ours / theirs:.2f})")
    print("PASS" if ratio <= GOAL else "FAIL")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    raise SystemExit(main())
