"""The session's one finished tiny experiment (tests/conftest.py: `finished_experiment`,
`mutable_experiment`), run for real once: `ck design --spec` -> `ck scaffold` -> `ck run` with the
local executor (real torchtune, real inspect-ai) on the tiny model.

    2 fine-tuned runs (a sweep over LoRA dropout, a setting that is not rank / lr / batch size),
    2 epochs each, validation loss during training; 3 tasks (the test split, the validation split,
    the test split with a system prompt) evaluated at the last checkpoint, epoch_1, in one job and one
    model load per checkpoint; a control (base.slurm); an eval-only row: a checkpoint another
    experiment wrote (elsewhere/epoch_3). 2 trainings, 4 evaluation jobs.

Tests read it in place (a shared lock: several may read at once, on either worker). A test that
changes it (adds a task, follows up, runs `ck` again) holds the exclusive lock and works on the very
same directory, which is put back from a pristine copy afterwards: every path the plan, the setup
files and the eval scripts hold, the experiment's identity and the evaluations' fingerprints stay
exactly what `ck` wrote (a copy elsewhere would be refused by design: its .ck/ names the original's
jobs, and its scripts point at the original's checkpoints).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASK = ROOT / "tools/cruijff_kit/blueprints/capitalization/inspect_task.py"
TASKS = ("cap_test", "cap_val", "cap_prompt")  # in the plan's order
SPLITS = {"cap_test": "test", "cap_val": "validation", "cap_prompt": "test"}
SYSTEM_PROMPT = "Capitalize the word."
EPOCHS = 2
EVAL_EPOCH = 1  # every task is evaluated at the last checkpoint only; epoch_0 is left for follow-ups
STEPS_PER_EPOCH = 2
SWEEP = {"drop0.0": 0.0, "drop0.25": 0.25}  # run directory -> LoRA dropout
FINETUNED = tuple(SWEEP)
CONTROL = "base"
EVAL_ONLY = ("other_ckpt",)

SPEC = """name: finished
models: {{tiny: {model}}}
dataset: {data}
grid: {{lora_dropout: [0.0, 0.25]}}
epochs: 2
gpus: 0
validation: true
eval_only:
  other_ckpt: {{model: tiny, checkpoint: {other}}}
config: {{Max steps per epoch: 2, Eval max tokens: 4, Warmup steps: 0}}
tasks:
  - {{task: cap_test, script: {task}, split: test, epochs: [1]}}
  - {{task: cap_val, script: {task}, split: validation, epochs: [1]}}
  - {{task: cap_prompt, script: {task}, split: test, system_prompt: {prompt}, epochs: [1]}}
"""


@dataclass(frozen=True)
class Finished:
    """Where everything is; `first_run` is `ck run --json`'s report of the run that finished it."""
    root: Path
    exp: Path
    model: Path
    data: Path
    other: Path  # the eval-only row's checkpoint (an HF model directory outside the experiment)
    env: dict
    first_run: dict

    @property
    def eval_runs(self) -> dict[str, str]:
        """run directory -> the stem of its one eval script (epoch1 / base)."""
        return {**{d: f"epoch{EVAL_EPOCH}" for d in FINETUNED}, **{d: "base" for d in (CONTROL, *EVAL_ONLY)}}

    def ledger(self) -> dict:
        return json.loads((self.exp / ".ck" / "ledger.json").read_text())["jobs"]

    def ck(self, *args, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
        return run_ck(*args, env=self.env, check=check, timeout=timeout)


def run_ck(*args, env: dict | None = None, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "cruijff_kit", *map(str, args)], capture_output=True, text=True,
                       env={**os.environ, **(env or {})}, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"ck {' '.join(map(str, args))} -> {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def build(where: Path, model: Path) -> dict:
    """Design, scaffold and run the experiment in where/exp; keep a pristine copy in where/pristine."""
    from cruijff_kit.blueprints.capitalization.generate import generate

    where.mkdir(parents=True)
    other = where / "elsewhere" / "epoch_3"  # an HF checkpoint another experiment wrote
    shutil.copytree(model, other)
    data = generate(where / "data.json", n=40)
    (where / "claude.local.md").write_text(f"- venv: {sys.prefix}\n")
    env = {"CK_LOCAL_CONFIG": str(where / "claude.local.md"), "CK_EXECUTOR": "local"}
    (where / "spec.yaml").write_text(SPEC.format(model=model, data=data, other=other, task=TASK,
                                                 prompt=SYSTEM_PROMPT))
    exp = where / "exp"
    run_ck("design", exp, "--spec", where / "spec.yaml", env=env)
    run_ck("scaffold", exp, env=env)
    first = json.loads(run_ck("run", exp, "--executor", "local", "--max-parallel", "2", "--poll", "0.3", "--json", env=env,
                              timeout=1800).stdout)
    if not first.get("ok"):
        raise RuntimeError(f"the finished experiment did not finish: {json.dumps(first)[:3000]}")
    shutil.copytree(exp, where / "pristine", symlinks=True)
    return {"root": str(where), "exp": str(exp), "model": str(model), "data": str(data), "other": str(other),
            "env": env, "first_run": first}


def load(value: dict) -> Finished:
    return Finished(root=Path(value["root"]), exp=Path(value["exp"]), model=Path(value["model"]),
                    data=Path(value["data"]), other=Path(value["other"]), env=dict(value["env"]),
                    first_run=value["first_run"])


@contextlib.contextmanager
def reading(fin: Finished):
    """Read the experiment: no test changes it meanwhile."""
    with _lock(fin, fcntl.LOCK_SH):
        yield fin


@contextlib.contextmanager
def changing(fin: Finished):
    """Change the experiment in place, alone; afterwards it is put back exactly as it was built."""
    with _lock(fin, fcntl.LOCK_EX):
        try:
            yield fin
        finally:
            shutil.rmtree(fin.exp, ignore_errors=True)
            shutil.copytree(fin.root / "pristine", fin.exp, symlinks=True)


@contextlib.contextmanager
def _lock(fin: Finished, how: int):
    with open(fin.root / "use.lock", "w") as fh:
        fcntl.flock(fh, how)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
