"""Helpers of the real-pipeline SLURM tests: `ck` as a subprocess, design + scaffold of the tiny
experiment, `ck run --executor slurm`, the ledger and sacct's own record."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TASK = ROOT / "tools/cruijff_kit/blueprints/capitalization/inspect_task.py"
SETUP_SCRIPT = ROOT / "tools/torchtune/setup_finetune.py"

def ck(*args, env: dict, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    r = subprocess.run([sys.executable, "-m", "cruijff_kit", *map(str, args)], capture_output=True, text=True,
                       env={**os.environ, **env}, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"ck {' '.join(map(str, args))} -> {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def design(inputs: dict, name: str, *extra: str, ranks: str = "4,8", control: bool = True) -> Path:
    exp = inputs["base"] / name
    ck("design", exp, "--model", f"tiny={inputs['base'] / 'model'}", "--dataset", inputs["base"] / "data.json",
       "--ranks", ranks, "--lrs", "1e-3", "--task", f"capitalization={TASK}@0",
       "--set", "Max steps per epoch=3", "--set", "Eval max tokens=4",
       *([] if control else ["--no-control"]), *extra, env=inputs["env"])
    ck("scaffold", exp, env=inputs["env"])
    return exp


def run_slurm(inputs: dict, exp: Path, *extra: str, env: dict | None = None) -> dict:
    r = ck("run", exp, "--executor", "slurm", "--poll", "1", "--json", *extra,
           env={**inputs["env"], **(env or {})}, check=False)
    try:
        return json.loads(r.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"ck run -> {r.returncode}, no JSON\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}") from None


def ledger(exp: Path) -> dict[str, dict]:
    return json.loads((exp / ".ck" / "ledger.json").read_text())["jobs"]


def sacct(job_ids) -> dict[str, dict]:
    """The scheduler's own record (allocation lines only), independent of what ck wrote down."""
    p = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID,State,Start,End,ExitCode",
                        "-j", ",".join(job_ids)], capture_output=True, text=True, check=True, timeout=30)
    rows = {}
    for line in p.stdout.splitlines():
        job_id, state, start, end, exit_code = line.split("|")
        rows[job_id] = {"state": state.split()[0], "start": start, "end": end, "exit_code": exit_code}
    return rows


def eval_status(log: Path) -> str:
    from inspect_ai.log import read_eval_log

    return read_eval_log(str(log)).status
