"""Run directory names from the parameters that vary (a name says what differs): rank8_lr1e-5/, rank8/,
Llama-3.2-1B_rank8/, rank8_drop0.1/; a search's trials: t00_rank8_lr1.2e-4/; control runs: base/ (or <model>_base/ when several models);
eval-only runs: their run name.
Any per-run setting may vary; its short name comes from settings.py."""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import CkError
from .model import Experiment, Run
from .search import trial_prefix
from ..settings import BY_KEY, RUN_SETTINGS

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
# order inside a directory name: the seeds' three first, then the schema's order
PARAMS = ("model", "lora_rank", "learning_rate", "batch_size") + tuple(
    s.key for s in RUN_SETTINGS if s.key not in ("lora_rank", "learning_rate", "batch_size"))
MAX_NAME = 200  # a directory name stays well under the file system's 255 bytes
_SUFFIXES = ("-Instruct", "-instruct", "-Chat", "-chat", "-it")


def check_safe_name(name: str, *, file: str | None = None, line: int | None = None,
                    fld: str = "Run Name") -> str:
    """A name that is safe for a shell and cannot leave the experiment directory."""
    if not SAFE_NAME.match(name) or ".." in name:
        raise CkError(f"unsafe name {name!r}: use letters, digits, '.', '_', '+', '-' "
                      "(no spaces, slashes, '..' or shell characters)", file=file, line=line, field=fld)
    return name


def inside(base: Path, candidate: Path) -> bool:
    """True when candidate (resolved, symlinks followed) stays inside base."""
    try:
        candidate.resolve().relative_to(base.resolve())
        return True
    except ValueError:
        return False


def short_model_names(models: list[str]) -> dict[str, str]:
    short = {}
    for m in models:
        s = m
        for suf in _SUFFIXES:
            if s.endswith(suf) and len(s) > len(suf):
                s = s[: -len(suf)]
                break
        short[m] = s
    if len(set(short.values())) != len(short):  # stripping made two models collide
        return {m: m for m in models}
    return short


def _raw(run: Run, param: str):
    return run.model if param == "model" else run.value(param)


def _effective(exp: Experiment, run: Run, param: str):
    value = run.model if param == "model" else exp.value(param, run)
    return tuple(value) if isinstance(value, list) else value


def varying_parameters(runs: list[Run] | tuple[Run, ...]) -> list[str]:
    ft = [r for r in runs if r.finetuned]
    return [p for p in PARAMS if len({_raw(r, p) for r in ft}) > 1]


def _part(param: str, exp: Experiment, run: Run, short: dict[str, str], levels: dict[str, list]) -> str:
    if param == "model":
        return short[run.model]
    value = _effective(exp, run, param)
    return BY_KEY[param].directory_part(value, levels[param].index(value) + 1)


def run_directories(exp: Experiment, summary_path: str | None = None) -> dict[str, str]:
    """Map run name -> directory name, for fine-tuned and control runs. Collisions are errors."""
    varying = varying_parameters(exp.runs) or ["lora_rank"]
    # names use effective values: a run without its own value shows the experiment's
    levels = {p: list(dict.fromkeys(_effective(exp, r, p) for r in exp.runs if r.finetuned)) for p in varying}
    models_used = list(dict.fromkeys(r.model for r in exp.runs))
    short = short_model_names(models_used)
    several_models = len(models_used) > 1
    out: dict[str, str] = {}
    owner: dict[str, Run] = {}
    for run in exp.runs:
        if run.finetuned:
            name = "_".join(_part(p, exp, run, short, levels) for p in varying)[:MAX_NAME]
            if run.trial is not None:  # a search's trial: its number first (two trials may sample the same values)
                name = f"{trial_prefix(run.trial, exp.search.trials if exp.search else 0)}_{name}"[:MAX_NAME]
        elif run.eval_only:
            name = run.name  # evaluates a model of its own: its name says which
        else:
            name = f"{short[run.model]}_base" if several_models else "base"
        check_safe_name(name, file=summary_path, line=run.line, fld="run directory")
        if name in owner:
            raise CkError(
                f"runs {owner[name].name!r} and {run.name!r} would share the directory {name!r}: "
                "they differ only in columns that do not name directories",
                file=summary_path, line=run.line, field="Run Name")
        owner[name] = run
        out[run.name] = name
    return out
