"""Append-only action logs in the seeds' format.

    [YYYY-MM-DD HH:MM:SS] ACTION: description
    Details: ...
    Result: ...
    <blank line>
"""
from __future__ import annotations

import os
from pathlib import Path
from .formats import log_stamp


def now_stamp() -> str:
    return log_stamp()


def format_entry(action: str, description: str, *, details: str | None = None,
                 result: str | None = None, extra: dict[str, str] | None = None,
                 stamp: str | None = None) -> str:
    lines = [f"[{stamp or now_stamp()}] {action.upper()}: {description}"]
    if details is not None:
        lines.append(f"Details: {details}")
    for key, value in (extra or {}).items():
        lines.append(f"{key}: {value}")
    if result is not None:
        lines.append(f"Result: {result}")
    return "\n".join(lines) + "\n\n"


class ActionLog:
    """One seeds-format log file (scaffold-torchtune.log, run-experiment.log, ...)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def write(self, action: str, description: str, *, details: str | None = None,
              result: str | None = None, **extra: str) -> None:
        entry = format_entry(action, description, details=details, result=result,
                             extra={k.replace("_", " ").capitalize(): v for k, v in extra.items()})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_APPEND writes of one entry are atomic enough for concurrent writers on one host.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, entry.encode("utf-8"))
        finally:
            os.close(fd)
