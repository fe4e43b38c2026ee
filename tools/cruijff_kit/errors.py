"""Errors that are part of the interface: what is wrong, where (file:line, field), what to do.

Every user-facing failure raises `CkError`; the CLI prints `str(err)` and exits with
`err.exit_code` (2 for bad input, as the standards require).
"""
from __future__ import annotations

from pathlib import Path


class CkError(Exception):
    """A problem the user can fix. Rendered as `file:line: field: message (hint)`."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        self.hint = hint

    @property
    def location(self) -> str:
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line else self.file

    def __str__(self) -> str:
        parts = []
        if self.location:
            parts.append(self.location)
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        text = ": ".join(parts)
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def to_dict(self) -> dict:
        return {
            "error": self.message,
            "file": self.file,
            "line": self.line,
            "field": self.field,
            "hint": self.hint,
        }


class CkErrors(CkError):
    """Several independent problems found in one pass (e.g. every bad row of a table)."""

    def __init__(self, errors: list[CkError]) -> None:
        super().__init__(f"{len(errors)} problem(s)")
        self.errors = errors

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)

    def to_dict(self) -> dict:
        return {"errors": [e.to_dict() for e in self.errors]}
