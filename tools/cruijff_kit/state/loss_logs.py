"""Training loss curves from torchtune's DiskLogger files (`<output_dir>/logs/log_<unix ts>.txt`).

Lines look like `Step 12 | loss:2.31 lr:0.0001 tokens_per_second_per_gpu:812.4 `. A resumed or
retried job starts a new file; files are read oldest first and a later value for the same step
replaces the earlier one, so the curve is the one of the run that finished. Validation loss, when
the recipe computes it, sits in the same files under the key `val_loss`.

torchtune counts steps globally (1, 2, ... epochs x steps_per_epoch) and every epoch has the same
number of steps, so step s belongs to epoch (s - 1) // steps_per_epoch (the `epoch_<N>` checkpoint
is saved at the end of epoch N). A line that carries its own `epoch:N` is trusted instead.
"""
from __future__ import annotations

import re
from pathlib import Path

_LINE = re.compile(r"^Step\s+(\d+)\s*\|\s*(.*)$")
_PAIR = re.compile(r"(\S+?):(\S+)")
_TS = re.compile(r"log_(\d+)")


def _order(path: Path) -> tuple[int, str]:
    m = _TS.search(path.name)
    return (int(m.group(1)) if m else 0, path.name)


def log_files(output_dir: Path) -> list[Path]:
    logs = output_dir / "logs"
    return sorted(logs.glob("log_*.txt"), key=_order) if logs.is_dir() else []


def read_log_values(output_dir: str | Path) -> dict[int, dict[str, float]]:
    """{step: {key: value}} over every log file, oldest first (later values replace earlier ones)."""
    by_step: dict[int, dict[str, float]] = {}
    for path in log_files(Path(output_dir)):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            m = _LINE.match(line.strip())
            if not m:
                continue
            for key, text in _PAIR.findall(m.group(2)):
                try:
                    by_step.setdefault(int(m.group(1)), {})[key] = float(text)
                except ValueError:
                    continue
    return by_step


def read_loss_curve(output_dir: str | Path, metric: str = "loss") -> list[tuple[int, float]]:
    """[(step, loss)] in step order; [] when there is no log (yet)."""
    return sorted((step, vals[metric]) for step, vals in read_log_values(output_dir).items() if metric in vals)


def steps_per_epoch(last_step: int, epochs: int) -> int | None:
    """Steps in one epoch of a finished run (all `epochs` epochs logged through their last step)."""
    if last_step <= 0 or epochs <= 0 or last_step % epochs:
        return None  # not a whole number of equal epochs: the log is not the one of a finished run
    return last_step // epochs


def epoch_of_step(step: int, per_epoch: int) -> int:
    return (step - 1) // per_epoch


def mean_per_epoch(curve: list[tuple[int, float]], per_epoch: int) -> dict[int, float]:
    """{epoch: mean of the values logged during it} (train loss of an epoch)."""
    sums: dict[int, list[float]] = {}
    for step, value in curve:
        sums.setdefault(epoch_of_step(step, per_epoch), []).append(value)
    return {e: sum(v) / len(v) for e, v in sorted(sums.items())}


def last_per_epoch(curve: list[tuple[int, float]], per_epoch: int) -> dict[int, float]:
    """{epoch: the value logged last in it} (validation loss at the end of an epoch)."""
    out: dict[int, float] = {}
    for step, value in sorted(curve):
        out[epoch_of_step(step, per_epoch)] = value
    return out


def wandb_offline_summaries(output_dir: str | Path) -> list[dict]:
    """Final metrics of wandb offline runs beside the disk log (files/wandb-summary.json), if any."""
    import json

    out = []
    for summary in sorted(Path(output_dir).glob("logs/wandb/*run-*/files/wandb-summary.json")):
        try:
            data = json.loads(summary.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        out.append({"path": str(summary.parents[1]),
                    **{k: v for k, v in data.items() if isinstance(v, (int, float)) and not k.startswith("_")}})
    return out
