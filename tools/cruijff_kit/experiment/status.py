"""Rewrite only the `## Status` section of experiment_summary.md, atomically.

The rest of the file is left byte-for-byte as the user wrote it: `ck run` must never destroy a
hand-edited plan.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Mapping

from ..util.fs import atomic_write_text
from .model import StatusRow
from ..templating import render

_H2 = re.compile(r"^##\s+(?P<title>.+?)\s*#*\s*$")


def render_status_section(rows: Iterable[StatusRow | Mapping[str, str]]) -> str:
    norm = [r if isinstance(r, StatusRow) else StatusRow(**{k: str(r.get(k, "") or "") for k in
                                                             ("run", "job", "job_id", "state", "duration")})
            for r in rows]
    return render("status_section.md.j2", rows=norm)


def replace_status_section(text: str, section: str) -> str:
    lines = text.splitlines(keepends=True)
    start = end = None
    in_fence = False
    for i, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        if in_fence:
            continue
        m = _H2.match(line.rstrip("\n"))
        if not m:
            continue
        if start is None and m.group("title").strip().lower() == "status":
            start = i
        elif start is not None:
            end = i
            break
    if start is None:
        body = text.rstrip("\n") + "\n\n" + section
        return body
    end = len(lines) if end is None else end
    tail = "".join(lines[end:])
    return "".join(lines[:start]) + section + ("\n" + tail if tail else "")


def write_status_section(summary_path: str | Path, rows: Iterable[StatusRow | Mapping[str, str]]) -> None:
    """rows: StatusRow or dicts with keys run, job, job_id, state, duration."""
    path = Path(summary_path)
    text = path.read_text(encoding="utf-8")
    atomic_write_text(path, replace_status_section(text, render_status_section(rows)))
