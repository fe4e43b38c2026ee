"""One executor interface (core.py), two backends: local/ and slurm/ (after submitit).

`auto` asks each backend for its affinity (as submitit's AutoExecutor does) and takes the best;
this module knows the backends' names and classes, never how they decide."""
from __future__ import annotations

import importlib
import os
from pathlib import Path

from ..errors import CkError

EXECUTORS = ("auto", "local", "slurm")
_BACKENDS = {"local": ("cruijff_kit.executors.local", "LocalExecutor"),
             "slurm": ("cruijff_kit.executors.slurm", "SlurmExecutor")}


def backend(name: str):
    """The executor class for `name` (imported lazily: ck starts fast)."""
    module, cls = _BACKENDS[name]
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        raise CkError(f"{name} executor unavailable ({exc})", field="--executor",
                      hint="choose another with --executor") from None


def resolve_name(name: str) -> str:
    """auto = $CK_EXECUTOR when set (e.g. local on a login node), else the backend with the
    highest affinity here (slurm where sbatch is on PATH, else local)."""
    if name == "auto":
        preset = os.environ.get("CK_EXECUTOR", "").strip()
        if preset:
            if preset not in _BACKENDS:
                raise CkError(f"CK_EXECUTOR={preset!r} is not an executor", field="CK_EXECUTOR",
                              hint="set it to local or slurm, or unset it")
            return preset
        scored = [(backend(n).affinity(), n) for n in _BACKENDS]
        best, chosen = max(scored)
        if best < 0:
            raise CkError("no executor can run here", field="--executor")
        return chosen
    if name not in EXECUTORS:
        raise CkError(f"unknown executor {name!r}", field="--executor",
                      hint="choose one of: " + ", ".join(EXECUTORS))
    return name


def get_executor(name: str, exp_dir: str | Path, **options):
    """Build the backend for `ck run`; `options` are the backend's own settings
    (local: max_parallel, gpus). Options a backend does not have are refused, not ignored."""
    cls = backend(resolve_name(name))
    return cls.from_options(exp_dir, **options)
