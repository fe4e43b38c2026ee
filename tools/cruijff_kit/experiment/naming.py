"""Run directory names from the parameters that vary (seed 002): rank8_lr1e-5/, rank8/,
Llama-3.2-1B_rank8/; control runs: base/ (or <model>_base/ when several models);
eval-only runs: their run name."""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import CkError
from .model import Experiment, Run
from .numbers import format_float

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
PARAMS = ("model", "lora_rank", "learning_rate", "batch_size")  # order inside a directory name
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


def varying_parameters(runs: list[Run] | tuple[Run, ...]) -> list[str]:
    ft = [r for r in runs if r.finetuned]
    return [p for p in PARAMS if len({getattr(r, p) for r in ft}) > 1]


def _part(param: str, run: Run, short: dict[str, str]) -> str:
    if param == "model":
        return short[run.model]
    if param == "lora_rank":
        return f"rank{run.lora_rank}"
    if param == "learning_rate":
        return f"lr{format_float(run.learning_rate)}" if run.learning_rate is not None else "lrdefault"
    if param == "batch_size":
        return f"bs{run.batch_size}" if run.batch_size is not None else "bsdefault"
    raise KeyError(param)


def run_directories(exp: Experiment, summary_path: str | None = None) -> dict[str, str]:
    """Map run name -> directory name, for fine-tuned and control runs. Collisions are errors."""
    varying = varying_parameters(exp.runs) or ["lora_rank"]
    models_used = list(dict.fromkeys(r.model for r in exp.runs))
    short = short_model_names(models_used)
    several_models = len(models_used) > 1
    out: dict[str, str] = {}
    owner: dict[str, Run] = {}
    for run in exp.runs:
        if run.finetuned:
            name = "_".join(_part(p, run, short) for p in varying)
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
