"""Per-run time estimate for the runs table, and the SLURM --time it suggests.

A run is `overhead + forward_batches * (PER_BATCH_S + batch_size * per_example_s)`:

    forward_batches = epochs * min(ceil(examples / (batch_size * ranks)), max_steps_per_epoch * grad_acc)
    per_example_s   = 6 * params * TOKENS_PER_EXAMPLE / (FLOPS_PER_DEVICE * MFU)

so fewer, larger batches are cheaper per example (the fixed per-batch cost: optimizer step,
data loading, logging), and both the dataset size and the batch size change the estimate.
LoRA still runs the full forward/backward through the frozen base model, so 6·N·T is the right
order. Parameters come from the model's config.json when readable, else from a size in its name
("1B", "8B"); examples from the dataset's train split when readable.

That formula is only the shape. When earlier experiments fine-tuned the same model (their ledgers
under the new experiment's parent directory or claude.local.md's output_dir_base), the estimate is
scaled by the median of measured / predicted over those runs (measured = the job's elapsed time
in its ledger), so it reflects this cluster's real throughput, start-up included. The estimate
is a planning aid shown as "~Ns/~Nm/~Nh"; it never changes what runs, and
`suggested_slurm_time` turns it into a --time default with a margin that the user may override.
"""
from __future__ import annotations

import functools
import json
import math
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from ..state.measurements import measured_finetunes

GPU_FLOPS = 312e12  # A100 bf16 dense peak
CPU_FLOPS = 5e10  # one modern core, fp32, order of magnitude
MFU = 0.3
TOKENS_PER_EXAMPLE = 32  # short instruction rows (capitalization-sized); coarse
OVERHEAD_S = 60.0  # start-up, model load, checkpoint save (GPU); CPU jobs: 5 s
PER_BATCH_S = 0.05  # optimizer step, data loading, logging: paid per batch whatever its size


def params_from_model(path: str, name: str) -> float | None:
    cfg = Path(path) / "config.json"
    try:
        c = json.loads(cfg.read_text())
        h, layers, inter = c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"]
        vocab = c.get("vocab_size", 32000)
        return layers * (4 * h * h + 3 * h * inter) + vocab * h
    except (OSError, KeyError, ValueError, TypeError):
        pass
    m = re.search(r"(\d+(?:\.\d+)?)\s*([BM])\b", name, re.I)
    if m:
        return float(m.group(1)) * (1e9 if m.group(2).upper() == "B" else 1e6)
    return None


def examples_in_dataset(path: str) -> int | None:
    p = Path(path)
    try:
        if p.suffix == ".json" and p.stat().st_size < 200_000_000:
            data = json.loads(p.read_text())
            if isinstance(data, dict):
                data = data.get("train", [])
            return len(data) if isinstance(data, list) else None
    except (OSError, ValueError):
        return None
    return None


def forward_batches(*, examples: int, epochs: int, batch_size: int, ranks: int = 1,
                    max_steps_per_epoch: int | None = None, grad_accum: int = 1) -> int:
    per_epoch = math.ceil(examples / max(batch_size * max(ranks, 1), 1))
    if max_steps_per_epoch:
        per_epoch = min(per_epoch, max_steps_per_epoch * max(grad_accum, 1))
    return epochs * per_epoch


def model_seconds(*, params: float, examples: int, epochs: int, batch_size: int, gpus: int,
                  max_steps_per_epoch: int | None = None, grad_accum: int = 1) -> float:
    """The uncalibrated formula (module docstring)."""
    batches = forward_batches(examples=examples, epochs=epochs, batch_size=batch_size, ranks=max(gpus, 1),
                              max_steps_per_epoch=max_steps_per_epoch, grad_accum=grad_accum)
    per_example = 6 * params * TOKENS_PER_EXAMPLE / ((GPU_FLOPS if gpus > 0 else CPU_FLOPS) * MFU)
    return (OVERHEAD_S if gpus > 0 else 5.0) + batches * (PER_BATCH_S + batch_size * per_example)


@dataclass(frozen=True)
class Calibration:
    factor: float  # measured / predicted, median over `runs`
    runs: int

    def describe(self) -> str:
        return f"scaled x{self.factor:.2g} from {self.runs} measured run(s)"


def estimate_seconds(*, params: float | None, examples: int | None, epochs: int, batch_size: int,
                     gpus: int, max_steps_per_epoch: int | None = None, grad_accum: int = 1,
                     calibration: Calibration | None = None) -> float | None:
    if params is None or examples is None:
        return None
    s = model_seconds(params=params, examples=examples, epochs=epochs, batch_size=batch_size, gpus=gpus,
                      max_steps_per_epoch=max_steps_per_epoch, grad_accum=grad_accum)
    return s * calibration.factor if calibration else s


def calibrate(model_path: str, search_dirs, *, exclude: Path | None = None) -> Calibration | None:
    """Measured / predicted over earlier fine-tunes of the same model (None when there are none)."""
    ratios = []
    params = None
    rows: dict[str, int | None] = {}
    for setup, elapsed in measured_finetunes(model_path, search_dirs, exclude=exclude):
        params = params if params is not None else params_from_model(model_path, "")
        dataset = str(setup.get("dataset") or "")
        if dataset not in rows:
            rows[dataset] = examples_in_dataset(dataset)
        try:
            predicted = estimate_seconds(
                params=params, examples=rows[dataset], epochs=int(setup.get("epochs") or 1),
                batch_size=int(setup.get("batch_size") or 1), gpus=int(setup.get("num_gpus") or 0),
                max_steps_per_epoch=setup.get("max_steps_per_epoch"),
                grad_accum=int(setup.get("gradient_accumulation_steps") or 1))
        except (TypeError, ValueError):
            continue
        if predicted:
            ratios.append(elapsed / predicted)
    if not ratios:
        return None
    return Calibration(statistics.median(ratios), len(ratios))


def suggested_slurm_time(seconds: float | None, *, margin: float = 1.5, minimum_s: float = 15 * 60) -> str | None:
    """A --time with room: estimate x margin, at least 15 min, rounded up to 15 min; D-HH:MM:SS."""
    if seconds is None:
        return None
    total = max(minimum_s, seconds * margin)
    total = math.ceil(total / 900 - 1e-9) * 900  # float noise must not add a quarter hour
    days, rest = divmod(int(total), 86400)
    h, rest = divmod(rest, 3600)
    text = f"{h:02d}:{rest // 60:02d}:00"
    return f"{days}-{text}" if days else text


def suggested_slurm_mem(params: float | None, *, floor_gb: int = 32) -> str | None:
    """A --mem default from the model's size: the job holds the bf16 weights (2 bytes/param) about
    twice at its peak (load, then merge for a merged save or an adapter evaluation), plus 8 GB for
    Python, torch and the data. Never below the old fixed default (floor_gb)."""
    if not params:
        return None
    return f"{max(floor_gb, math.ceil(params * 2 * 2 / 1e9 + 8))}G"


@functools.lru_cache(maxsize=64)
def _facts(model: str, name: str, dataset: str, search_dirs: tuple[str, ...]):
    """Model size, dataset rows and calibration, read once per scaffold (not once per run)."""
    return (params_from_model(model, name), examples_in_dataset(dataset),
            calibrate(model, search_dirs) if model else None)


def estimated_time_limit(setup: dict, search_dirs=(), *, margin: float = 1.5) -> str | None:
    """The --time default for one run from its resolved setup_finetune values (model_checkpoint,
    dataset, epochs, batch_size, num_gpus, max_steps_per_epoch, gradient_accumulation_steps),
    calibrated by earlier runs of the same model under `search_dirs`; None when the model or the
    dataset cannot be read (keep the configured default then). For scaffolding, when the user did
    not set slurm_time."""
    model = str(setup.get("model_checkpoint") or "")
    params, examples, calibration = _facts(model, str(setup.get("model_name") or ""),
                                           str(setup.get("dataset") or ""), tuple(map(str, search_dirs)))
    try:
        seconds = estimate_seconds(
            params=params, examples=examples,
            epochs=int(setup.get("epochs") or 1), batch_size=int(setup.get("batch_size") or 1),
            gpus=int(setup.get("num_gpus") or 0), max_steps_per_epoch=setup.get("max_steps_per_epoch"),
            grad_accum=int(setup.get("gradient_accumulation_steps") or 1), calibration=calibration)
    except (TypeError, ValueError):
        return None
    return suggested_slurm_time(seconds, margin=margin)
