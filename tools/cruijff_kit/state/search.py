"""What disk says about a search (issue: a search that prunes): its decisions in the ledger, the
evidence each rung is decided on, and the compute it has spent.

The ledger keeps one list under its top-level "search" key, appended to and never rewritten:

    {"search": {"decisions": [{"trial": 3, "run": "t03_lr1e-4", "rung": 0, "epochs": 1,
                               "metric": "val_loss", "value": 0.53, "decision": "promoted",
                               "why": "...", "at": "2026-12-07T12:00:00+00:00"}, ...]}}

A decision is final: a trial pruned at rung r trains nothing more; promoted at rung r, it trains
to the next rung's epochs. "completed" is written when a trial has trained every epoch.
The Optuna study (EXP/.ck/search.journal) mirrors the same values for its samplers and
importance; the ledger is what `ck run`, `ck status` and the report read.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

from ..errors import CkError
from ..util.formats import now_iso
from . import layout
from .artifacts import list_logs, read_result
from .loss_logs import read_log_values

PROMOTED = "promoted"
PRUNED = "pruned"
COMPLETED = "completed"  # trained every epoch (the last rung)
FAILED = "failed"        # its training failed for good: it competes no more
DECISIONS = (PROMOTED, PRUNED, COMPLETED, FAILED)
VAL_LOSS = "val_loss"
JOURNAL = "search.journal"


@dataclass(frozen=True)
class Decision:
    trial: int
    run: str
    rung: int
    epochs: int           # epochs trained when it was decided
    metric: str
    value: float | None   # None: no value (failed)
    decision: str         # one of DECISIONS
    why: str = ""
    at: str = ""

    @property
    def goes_on(self) -> bool:
        return self.decision == PROMOTED

    def to_dict(self) -> dict:
        return asdict(self)


def journal_path(exp_dir: Path) -> Path:
    return layout.ck_dir(exp_dir) / JOURNAL


def decisions(data: dict, path: Path | None = None) -> list[Decision]:
    """The search decisions of a ledger document (read by state/ledger.Ledger), typed; a malformed
    record is refused (it decides what trains next)."""
    block = data.get("search")
    if block is None:
        return []
    rows = block.get("decisions") if isinstance(block, dict) else None
    if not isinstance(rows, list):
        raise CkError("ledger has the wrong shape: 'search.decisions' is not a list", file=path)
    out = []
    for i, d in enumerate(rows):
        try:
            value = d.get("value")
            dec = Decision(int(d["trial"]), str(d["run"]), int(d["rung"]), int(d["epochs"]),
                           str(d["metric"]), None if value is None else float(value), str(d["decision"]),
                           str(d.get("why") or ""), str(d.get("at") or ""))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise CkError(f"ledger has the wrong shape: search.decisions[{i}] is not a decision",
                          file=path) from None
        if dec.decision not in DECISIONS:
            raise CkError(f"ledger has the wrong shape: search.decisions[{i}].decision "
                          f"{dec.decision!r} is not one of {', '.join(DECISIONS)}", file=path)
        out.append(dec)
    return out


def append_decisions(data: dict, new: Iterable[Decision]) -> None:
    """Add decisions to a ledger document (inside Ledger.transaction()); a (trial, rung) already
    decided is never decided again."""
    block = data.setdefault("search", {})
    rows = block.setdefault("decisions", [])
    seen = {(int(d["trial"]), int(d["rung"])) for d in rows}
    for dec in new:
        if (dec.trial, dec.rung) in seen:
            continue
        seen.add((dec.trial, dec.rung))
        rows.append({**dec.to_dict(), "at": dec.at or now_iso()})


# ---- evidence ------------------------------------------------------------------------------
def epoch_val_loss(output_dir: Path) -> dict[int, float]:
    """{epoch: validation loss at its end} from the trainer's disk log: both trainers write an
    `epoch:N` next to the epoch-end val_loss; a resumed job's later file replaces earlier values."""
    out: dict[int, float] = {}
    for _step, vals in sorted(read_log_values(output_dir).items()):
        if "val_loss" in vals and "epoch" in vals and not math.isnan(vals["val_loss"]):
            out[int(vals["epoch"])] = vals["val_loss"]
    return out


def task_metric(run_dir: Path, task: str, epoch: int, metric: str) -> float | None:
    """The newest successful evaluation of `task` at `epoch` in run_dir/eval/logs: its `metric`
    (first scorer's, or "scorer/metric"), None when there is none yet."""
    best: tuple[str, float] | None = None
    for path in list_logs(Path(run_dir) / layout.EVAL_DIR / layout.EVAL_LOGS):
        try:
            res = read_result(path)
        except Exception:  # noqa: BLE001 - an unreadable log is no evidence (never a value)
            continue
        if res.status != "success" or res.task != task or res.epoch != epoch:
            continue
        value = res.metrics.get(metric)
        if value is None:
            value = next((v for k, v in res.metrics.items() if k.split("/")[-1] == metric), None)
        if value is None or math.isnan(value):
            continue
        if best is None or res.created > best[0]:
            best = (res.created, value)
    return None if best is None else best[1]
