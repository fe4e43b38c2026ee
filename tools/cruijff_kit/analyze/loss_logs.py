"""Training loss curves from torchtune's DiskLogger files (`<output_dir>/logs/log_<unix ts>.txt`).

Lines look like `Step 12 | loss:2.31 lr:0.0001 tokens_per_second_per_gpu:812.4 `. A resumed or
retried job starts a new file; files are read oldest first and a later value for the same step
replaces the earlier one, so the curve is the one of the run that finished.
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


def read_loss_curve(output_dir: str | Path, metric: str = "loss") -> list[tuple[int, float]]:
    """[(step, loss)] in step order; [] when there is no log (yet)."""
    by_step: dict[int, float] = {}
    for path in log_files(Path(output_dir)):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            m = _LINE.match(line.strip())
            if not m:
                continue
            values = dict(_PAIR.findall(m.group(2)))
            if metric in values:
                try:
                    by_step[int(m.group(1))] = float(values[metric])
                except ValueError:
                    continue
    return sorted(by_step.items())


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
