"""Small helpers shared by command modules."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import CkError


def emit_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def experiment_dir(arg: str) -> Path:
    p = Path(arg).expanduser()
    if p.is_file() and p.name == "experiment_summary.md":
        p = p.parent
    if not p.is_dir():
        raise CkError("experiment directory not found", file=p)
    return p.resolve()


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)
