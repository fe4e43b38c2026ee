"""One executor interface (core.py), two backends: local/ and slurm/ (after submitit)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import CkError

EXECUTORS = ("auto", "local", "slurm")


def resolve_name(name: str) -> str:
    """auto = $CK_EXECUTOR when set (e.g. local on a login node), else slurm when sbatch is on PATH,
    else local."""
    if name == "auto":
        preset = os.environ.get("CK_EXECUTOR", "").strip()
        if preset:
            if preset not in ("local", "slurm"):
                raise CkError(f"CK_EXECUTOR={preset!r} is not an executor", field="CK_EXECUTOR",
                              hint="set it to local or slurm, or unset it")
            return preset
        return "slurm" if shutil.which("sbatch") else "local"
    if name not in EXECUTORS:
        raise CkError(f"unknown executor {name!r}", field="--executor",
                      hint="choose one of: " + ", ".join(EXECUTORS))
    return name


def get_executor(name: str, exp_dir: str | Path, *, max_parallel: int = 1,
                 gpus: list[str] | None = None):
    """Build the backend for `ck run`. Backends are imported lazily (ck starts fast)."""
    name = resolve_name(name)
    if name == "local":
        from .local import LocalExecutor

        return LocalExecutor(exp_dir, max_parallel=max_parallel, gpus=gpus)
    try:
        from .slurm import SlurmExecutor
    except ImportError as exc:
        raise CkError(f"slurm executor unavailable ({exc})", field="--executor",
                      hint="use --executor local") from None
    return SlurmExecutor(exp_dir)
