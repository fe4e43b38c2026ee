"""External commands (sinfo, sacct, conda, nvidia-smi …) go through a Probe so that setup and
doctor can be pointed at a fake PATH, or a fake Probe, without touching the real machine."""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class Result:
    rc: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def why(self) -> str:
        """The last line of what the command said, for a one-line explanation."""
        lines = (self.err or self.out).strip().splitlines()
        return lines[-1].strip() if lines else f"exit {self.rc}"


class Probe:
    """`which` and `run` against a PATH (default: the current one, read at call time)."""

    def __init__(self, path: str | None = None, timeout: float = 15.0) -> None:
        self.path = path
        self.timeout = timeout

    def which(self, name: str) -> str | None:
        return shutil.which(name, path=self.path if self.path is not None else os.environ.get("PATH", ""))

    def run(self, argv: Sequence[str], *, timeout: float | None = None) -> Result:
        exe = self.which(argv[0])
        if exe is None:
            return Result(127, "", f"{argv[0]}: not found on PATH")
        limit = timeout or self.timeout
        try:
            p = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, timeout=limit,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return Result(124, "", f"`{' '.join(argv)}` did not answer within {limit:g} s")
        except OSError as exc:
            return Result(126, "", f"{argv[0]}: {exc}")
        return Result(p.returncode, p.stdout, p.stderr)
