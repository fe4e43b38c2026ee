"""Synthetic experiments that follow the on-disk contract, with tiny bash stand-ins for
torchtune and inspect. Every script appends "start|end <key> <job id> <epoch secs>" to a marker
file, so tests can count launches and check ordering from what really ran.

The artifacts are real: the training stand-in writes a real safetensors shard plus the
model.safetensors.index.json torchtune writes; the evaluation stand-in checks that `ck run`
passed the job's inspect metadata in $CK_INSPECT_ARGS and puts a real inspect-ai log (written
with inspect's own write_eval_log, carrying that metadata) into eval/logs/."""
from __future__ import annotations

import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cruijff_kit.executors.local import LocalExecutor
from cruijff_kit.run.orchestrator import run_experiment

SUMMARY = """# Experiment: fake

## Configuration
- **Epochs:** 1

## Status

(not started)

## Notes
keep me
"""


@dataclass
class FakeRun:
    name: str
    sleep: float = 0.3
    rc: int = 0  # finetune exit code
    epochs: int = 1
    tasks: tuple[str, ...] = ("cap",)
    eval_epochs: tuple[int, ...] | None = None  # default: every epoch
    eval_sleep: float = 0.1
    oom_until_batch: int | None = None  # exit like OOM unless CK_TUNE_OVERRIDES has batch_size <= this
    batch_size: int = 8
    control: bool = False  # base-model evals only, no finetune.slurm
    extra: dict = field(default_factory=dict)
    per_checkpoint: bool = False  # one eval/epoch<N>.slurm listing every task (else <task>_epoch<N>.slurm)


def _marker_lines(key: str, marker: Path) -> tuple[str, str]:
    m = shlex.quote(str(marker))
    return (f'echo "start {key} $SLURM_JOB_ID $(date +%s.%N) ${{CK_TUNE_OVERRIDES:-}}" >> {m}',
            f'echo "end {key} $SLURM_JOB_ID $(date +%s.%N)" >> {m}')


def finetune_script(run: FakeRun, out_dir: Path, marker: Path) -> str:
    start, end = _marker_lines(f"{run.name}/finetune", marker)
    lines = ["#!/bin/bash", "#SBATCH --job-name=ft", "#SBATCH --time=00:10:00",
             'cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")}"', start,
             f'echo "training {run.name} on CUDA_VISIBLE_DEVICES=[$CUDA_VISIBLE_DEVICES]"']
    if run.oom_until_batch is not None:
        lines += [
            'bs=$(printf "%s\\n" $CK_TUNE_OVERRIDES | sed -n "s/^batch_size=//p")',
            f'bs=${{bs:-{run.batch_size}}}',
            f'if [ "$bs" -gt {run.oom_until_batch} ]; then',
            '  echo "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"; exit 1',
            'fi']
    lines.append(f"sleep {run.sleep}")
    if run.rc:
        lines += ['echo "Traceback (most recent call last):"', 'echo "RuntimeError: fake training failure"',
                  f"exit {run.rc}"]
    weights = shlex.quote(str(marker.parent / WEIGHTS))
    for e in range(run.epochs):
        d = shlex.quote(str(out_dir / f"epoch_{e}"))
        lines.append(f"mkdir -p {d} && cp {weights} {d}/model-00001-of-00001.safetensors"
                     f" && printf '%s' {shlex.quote(INDEX)} > {d}/model.safetensors.index.json")
    lines += [end, "exit 0", ""]
    return "\n".join(lines)


def eval_script(run: FakeRun, task: str, epoch: int | None, out_dir: Path, marker: Path) -> str:
    stem = f"{task}_epoch{epoch}" if epoch is not None else f"{task}_base"
    start, end = _marker_lines(f"{run.name}/eval/{stem}", marker)
    lines = ["#!/bin/bash", "#SBATCH --job-name=ev", 'cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")}"', start]
    if epoch is not None:
        ck = shlex.quote(str(out_dir / f"epoch_{epoch}"))
        lines += [f"if [ ! -d {ck} ]; then echo 'ck: no checkpoint at {ck}' >&2; exit 3; fi"]
    key = f"{run.name}/eval/{stem}"
    src = shlex.quote(str(marker.parent / "eval-logs" / f"{run.name}__{stem}.eval"))
    lines += [f'case " ${{CK_INSPECT_ARGS:-}} " in *" --metadata ck_job=\\"{key}\\" "*) ;; '
              f'*) echo "ck: no inspect metadata for {key}: [${{CK_INSPECT_ARGS:-}}]" >&2; exit 4;; esac',
              f"sleep {run.eval_sleep}", "mkdir -p logs", f"cp {src} logs/{stem}.eval", end, ""]
    return "\n".join(lines)


def checkpoint_eval_script(run: FakeRun, epoch: int | None, out_dir: Path, marker: Path) -> str:
    """The one-script-per-checkpoint layout: a `--task NAME FILE@FUNCTION ARGS_JSON` line per task
    (as templates/eval.slurm.j2 writes them); the stand-in copies the staged log of each task
    $CK_TASKS names (every task when it is unset) and appends "KEY JOBID [$CK_TASKS]" to tasks.txt."""
    stem = f"epoch{epoch}" if epoch is not None else "base"
    key = f"{run.name}/eval/{stem}"
    start, end = _marker_lines(key, marker)
    lines = ["#!/bin/bash", "#SBATCH --job-name=ev", 'cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")}"', start,
             f'echo "{key} $SLURM_JOB_ID [${{CK_TASKS-unset}}]" >> {shlex.quote(str(marker.parent / "tasks.txt"))}']
    if epoch is not None:
        ck = shlex.quote(str(out_dir / f"epoch_{epoch}"))
        lines += [f"if [ ! -d {ck} ]; then echo 'ck: no checkpoint at {ck}' >&2; exit 3; fi"]
    lines += [f'case " ${{CK_INSPECT_ARGS:-}} " in *" --metadata ck_job=\\"{key}\\" "*) ;; '
              f'*) echo "ck: no inspect metadata for {key}: [${{CK_INSPECT_ARGS:-}}]" >&2; exit 4;; esac',
              "set -- \\"]
    for task in run.tasks:
        lines.append(f"  --task {task} task.py@{task} " + shlex.quote('{"split": "test"}') + " \\")
    lines += ["  --", f"sleep {run.eval_sleep}", "mkdir -p logs",
              f'todo="${{CK_TASKS-{" ".join(t + "=x" for t in run.tasks)}}}"',
              'for item in $todo; do',
              f'  cp {shlex.quote(str(marker.parent / "eval-logs"))}/{run.name}__{stem}__"${{item%%=*}}".eval logs/',
              "done", end, ""]
    return "\n".join(lines)


def stage_task_logs(script: Path, run: FakeRun, epoch: int | None, out_dir: Path, marker: Path) -> None:
    """The logs the per-checkpoint stand-in copies: one per task, tagged with its own fingerprint."""
    from cruijff_kit.state.artifacts import eval_fingerprint

    model = f"hf/{out_dir / f'epoch_{epoch}'}" if epoch is not None else "hf/models/base"
    for task in run.tasks:
        meta = {"ck_job": f"{run.name}/eval/{script.stem}", "ck_eval": eval_fingerprint(script, task), "ck_task": task,
                "ck_epoch": "base" if epoch is None else str(epoch)}
        write_eval_log(marker.parent / "eval-logs" / f"{run.name}__{script.stem}__{task}.eval", task=task,
                       model=model, metadata=meta)


def tasks_given(exp: Path) -> list[tuple[str, str]]:
    """(job key, $CK_TASKS as the job saw it) for every per-checkpoint stand-in that ran."""
    path = exp.parent / "tasks.txt"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        key, _job_id, rest = line.split(" ", 2)
        out.append((key, rest.strip("[]")))
    return out


WEIGHTS = "weights.safetensors"
INDEX = '{"metadata": {"total_size": 64}, "weight_map": {"lm_head.weight": "model-00001-of-00001.safetensors", "model.norm.weight": "model-00001-of-00001.safetensors"}}'


def write_weights(path: Path) -> None:
    """A real safetensors file (tiny tensors), as torchtune's save_file writes it."""
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"lm_head.weight": np.ones((4, 2), dtype=np.float32),
               "model.norm.weight": np.ones((8,), dtype=np.float32)}, str(path), metadata={"format": "pt"})


def write_eval_log(path: Path, *, task: str, model: str, status: str = "success",
                   metadata: dict | None = None, accuracy: float = 0.75) -> None:
    """A real inspect-ai log (header + results), written by inspect itself."""
    import datetime as dt

    from inspect_ai.log import (EvalConfig, EvalDataset, EvalLog, EvalMetric, EvalResults, EvalScore,
                                EvalSpec, write_eval_log as _write)

    path.parent.mkdir(parents=True, exist_ok=True)
    spec = EvalSpec(created=dt.datetime.now(dt.timezone.utc).isoformat(), task=task, dataset=EvalDataset(),
                    model=model, config=EvalConfig(), metadata=metadata or None)
    results = EvalResults(total_samples=4, completed_samples=4, scores=[EvalScore(
        name="match", scorer="match", metrics={"accuracy": EvalMetric(name="accuracy", value=accuracy)})])
    _write(EvalLog(eval=spec, status=status, results=results if status == "success" else None), str(path))


def stage_eval_log(script: Path, run: str, task: str, epoch: int | None, out_dir: Path, marker: Path) -> None:
    """The log the stand-in copies: tagged as `ck run` tags the job (its key and fingerprint)."""
    from cruijff_kit.state.artifacts import eval_fingerprint

    stem = script.stem
    model = f"hf/{out_dir / f'epoch_{epoch}'}" if epoch is not None else "hf/models/base"
    meta = {"ck_job": f"{run}/eval/{stem}", "ck_eval": eval_fingerprint(script), "ck_task": task,
            "ck_epoch": "base" if epoch is None else str(epoch)}
    write_eval_log(marker.parent / "eval-logs" / f"{run}__{stem}.eval", task=task, model=model, metadata=meta)


def make_experiment(root: Path, runs: list[FakeRun]) -> Path:
    exp = root / "exp"
    exp.mkdir(parents=True)
    (exp / "experiment_summary.md").write_text(SUMMARY)
    marker = exp.parent / "launches.txt"
    marker.touch()
    write_weights(exp.parent / WEIGHTS)
    for run in runs:
        rd = exp / run.name
        (rd / "eval").mkdir(parents=True)
        out_dir = root / "outputs" / f"ck-out-{run.name}"
        if not run.control:
            (rd / "setup_finetune.yaml").write_text(
                f"output_dir: {out_dir}\nepochs: {run.epochs}\nnum_gpus: 0\nbatch_size: {run.batch_size}\n")
            (rd / "finetune.yaml").write_text(
                f"output_dir: {out_dir}\nepochs: {run.epochs}\nbatch_size: {run.batch_size}\n"
                "gradient_accumulation_steps: 1\n")
            (rd / "finetune.slurm").write_text(finetune_script(run, out_dir, marker))
            if run.per_checkpoint:
                for e in (run.eval_epochs if run.eval_epochs is not None else range(run.epochs)):
                    script = rd / "eval" / f"epoch{e}.slurm"
                    script.write_text(checkpoint_eval_script(run, e, out_dir, marker))
                    stage_task_logs(script, run, e, out_dir, marker)
                continue
            for task in run.tasks:
                for e in (run.eval_epochs if run.eval_epochs is not None else range(run.epochs)):
                    script = rd / "eval" / f"{task}_epoch{e}.slurm"
                    script.write_text(eval_script(run, task, e, out_dir, marker))
                    stage_eval_log(script, run.name, task, e, out_dir, marker)
        elif run.per_checkpoint:
            script = rd / "eval" / "base.slurm"
            script.write_text(checkpoint_eval_script(run, None, out_dir, marker))
            stage_task_logs(script, run, None, out_dir, marker)
        else:
            for task in run.tasks:
                script = rd / "eval" / f"{task}_base.slurm"
                script.write_text(eval_script(run, task, None, out_dir, marker))
                stage_eval_log(script, run.name, task, None, out_dir, marker)
    return exp


def launches(exp: Path) -> list[tuple[str, str, str, float]]:
    """(start|end, key, job id, time) for every line scripts appended."""
    out = []
    for line in (exp.parent / "launches.txt").read_text().splitlines():
        parts = line.split()
        out.append((parts[0], parts[1], parts[2], float(parts[3])))
    return out


def starts(exp: Path, key: str | None = None) -> list[tuple[str, str, str, float]]:
    return [x for x in launches(exp) if x[0] == "start" and (key is None or x[1] == key)]


def wait_for(pred, timeout: float = 20.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


# ---- running them: `ck run` in-process with the local executor, and as a subprocess ----------------

POLL = 0.2


def run(exp: Path, lines: list | None = None, **kw):
    opts = dict(max_parallel=kw.pop("max_parallel", 3), gpus=[])
    out = (lines.append if lines is not None else (lambda _l: None))
    return run_experiment(exp, LocalExecutor(exp, **opts), poll_s=POLL, out=out, **kw)


def by_key(report) -> dict:
    return {j.key: j for j in report.jobs}


def ck(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cruijff_kit", *args], capture_output=True, text=True,
                          timeout=timeout)
