"""Run conveniences around the orchestrator: `ck run DIR --runs GLOB` (only some run directories),
`--analyze` (analysis when the last job ends) and `--notify CMD` (a command told how it went, with
`ck status --json`'s document on its stdin). The detached supervisor gets the same flags, so it
does all three while the user is away.
"""
from __future__ import annotations

import fnmatch
import json
import subprocess
from pathlib import Path
from typing import Callable

from ..errors import CkError
from ..executors.core import JobState
from ..experiment.naming import run_directories
from ..experiment.parse import load_experiment

NOTIFY_TIMEOUT_S = 120


def select_runs(plan, pattern: str | None) -> set[str] | None:
    """Names of the run directories matching the glob (None = all); CkError when none match."""
    if not pattern:
        return None
    names = sorted({j.run for j in plan.jobs})
    keep = {n for n in names if fnmatch.fnmatchcase(n, pattern)}
    # a run's plan name (runs table) selects its directory too: one run, one name either way
    keep |= {d for run, d in _plan_names(plan.exp_dir).items() if d in names and fnmatch.fnmatchcase(run, pattern)}
    if not keep:
        raise CkError(f"--runs {pattern!r} matches no run directory", field="--runs",
                      hint="run directories: " + ", ".join(names[:20]) + (" ..." if len(names) > 20 else ""))
    return keep


def _plan_names(exp_dir: Path) -> dict[str, str]:
    """Plan run name -> run directory ({} when the plan cannot be read: plan_experiment says why)."""
    try:
        return run_directories(load_experiment(exp_dir))
    except CkError:
        return {}


def analyze_when_done(exp: Path, analyze: Callable[[Path], object], log, out) -> str | None:
    """Run the analysis (`analyze`: the command layer's analyze_experiment; run/ does not import
    analyze/); never fails the run (its outcome is logged)."""
    try:
        analysis = analyze(exp)
    except Exception as exc:  # analysis is a view of finished results: report, do not raise
        log.write("ANALYZE", "Automatic analysis failed", details=str(exc), result="run `ck analyze` by hand")
        out(f"    analysis failed: {exc}")
        return None
    where = getattr(analysis, "out_dir", None) or exp / "analysis"
    log.write("ANALYZE", "Automatic analysis", result=f"written to {where}")
    out(f"    analysis written to {where}")
    return str(where)


def notify(exp: Path, command: str, log, out) -> int | None:
    """Run `command` through the shell in EXP with `ck status --json`'s document on stdin and
    CK_EXPERIMENT / CK_RUN_OK in its environment. Returns its exit code (None: it could not run)."""
    import os

    from .status import experiment_status

    status = experiment_status(exp)
    bad = {k: v for k, v in status["counts"].items() if k != JobState.COMPLETED.value}
    env = {**os.environ, "CK_EXPERIMENT": str(exp), "CK_RUN_OK": "0" if bad else "1"}
    try:
        p = subprocess.run(command, shell=True, cwd=exp, input=json.dumps(status), text=True,
                           capture_output=True, timeout=NOTIFY_TIMEOUT_S, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.write("NOTIFY", "Notification command failed", details=command, result=str(exc))
        out(f"    notify failed: {exc}")
        return None
    tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
    log.write("NOTIFY", "Notification command", details=command,
              result=f"exit {p.returncode}" + (f": {' / '.join(tail)}" if p.returncode and tail else ""))
    if p.returncode:
        out(f"    notify command exited {p.returncode}")
    return p.returncode
