"""Loss values printed in a training log, and whether they went NaN or diverged.

A run that exits 0 after its loss became NaN, or exploded, trained nothing useful: status calls
that `nan` / `diverged`, never `succeeded`. Divergence: a loss above 1e6, or above 100 times the
first value logged under the same name. Only the first 256 KiB and the last 4 MiB of a log are
read (line numbers count from the start when the log is smaller than that, else from the start
of the part read).
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from ..util import procs

HEAD_BYTES = 256 * 1024
TAIL_BYTES = 4 * 2**20
ABSOLUTE_LIMIT = 1e6
RELATIVE_LIMIT = 100.0

_NUM = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|inf(?:inity)?)"
# "loss 4.2", "loss: 4.2", "train/loss=4.2", "'loss': 4.2", "loss tensor(4.2)", "val_loss 0.3"
LOSS_VALUE = re.compile(r"(?<![\w/.-])(?P<key>[\w/.-]*loss[\w/.-]*)['\"]?\s*(?:[:=]\s*|\s+)(?:tensor\(\s*)?"
                        r"(?P<val>" + _NUM + r")(?![\w.])", re.I)
# Messages frameworks print about non-finite losses (not "key value" pairs)
NAN_MESSAGE = re.compile(r"returned nan values|non-finite loss|nan or inf found|\bnan loss\b|detected nan"
                         r"|loss (?:is|became) (?:nan|inf)|gradients? (?:is|are|became) (?:nan|inf)", re.I)
_SKIP_KEY = re.compile(r"scale|best|weight|coef|lambda|alpha", re.I)


def log_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the training's own output: the wrapper's "[ck launch]" lines echo the
    command, which may contain words like "nan"."""
    return [(i, line.rstrip()) for i, line in enumerate(text.splitlines(), 1)
            if not line.startswith("[ck launch]")]


def read_log(path: str | Path) -> str:
    """The log as far as it is read: all of it when small, else its head and its tail."""
    head = procs.head_text(path, HEAD_BYTES + TAIL_BYTES)
    if len(head.encode("utf-8", errors="replace")) < HEAD_BYTES + TAIL_BYTES:
        return head
    return procs.head_text(path, HEAD_BYTES).rsplit("\n", 1)[0] + "\n" + procs.tail_text(path, TAIL_BYTES).split("\n", 1)[-1]


def values(lines: list[tuple[int, str]]) -> list[tuple[int, str, float, str]]:
    """Every (line number, key, value, line) of a loss printed in the log."""
    out = []
    for lineno, line in lines:
        for m in LOSS_VALUE.finditer(line):
            if _SKIP_KEY.search(m.group("key")):
                continue
            try:
                out.append((lineno, m.group("key").lower(), float(m.group("val")), line))
            except ValueError:
                continue
    return out


def health(text: str) -> dict[str, Any]:
    """{"state": "ok" | "nan" | "diverged", "evidence": {"line", "text"} | None, "reason": str | None}:
    the earliest sign wins (a loss usually explodes before it becomes NaN)."""
    lines = log_lines(text)
    found: list[tuple[int, str, str, str]] = []  # (line, state, text, reason)
    first: dict[str, float] = {}
    for lineno, key, value, line in values(lines):
        if not math.isfinite(value):
            found.append((lineno, "nan", line, f"{key} is {value}"))
            break
        if key not in first:
            first[key] = value
            continue
        if abs(value) > ABSOLUTE_LIMIT:
            found.append((lineno, "diverged", line, f"{key} = {value:g} > {ABSOLUTE_LIMIT:g}"))
            break
        if first[key] > 0 and value > RELATIVE_LIMIT * first[key]:
            found.append((lineno, "diverged", line,
                          f"{key} = {value:g}, over {RELATIVE_LIMIT:g}x its first value {first[key]:g}"))
            break
    for lineno, line in lines:
        if NAN_MESSAGE.search(line):
            found.append((lineno, "nan", line, "the log reports a non-finite loss"))
            break
    if not found:
        return {"state": "ok", "evidence": None, "reason": None}
    lineno, state, line, reason = min(found, key=lambda f: f[0])
    return {"state": state, "evidence": {"line": lineno, "text": line[:500]}, "reason": reason}
