"""External commands (sinfo, sacct, conda, nvidia-smi …) go through a Probe so that setup and
doctor can be pointed at a fake PATH, or a fake Probe, without touching the real machine."""
from __future__ import annotations

import os
import shutil
from typing import Sequence

from ..util.procs import CommandResult as Result  # noqa: F401  (what Probe.run returns)
from ..util.procs import run_command


class Probe:
    """`which` and `run` against a PATH (default: the current one, read at call time)."""

    def __init__(self, path: str | None = None, timeout: float = 15.0) -> None:
        self.path = path
        self.timeout = timeout

    def _path(self) -> str:
        return self.path if self.path is not None else os.environ.get("PATH", "")

    def which(self, name: str) -> str | None:
        return shutil.which(name, path=self._path())

    def run(self, argv: Sequence[str], *, timeout: float | None = None) -> Result:
        return run_command(argv, timeout=timeout or self.timeout, path=self._path())
