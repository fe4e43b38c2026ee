"""Per-run time estimate for the runs table (documented, deliberately simple).

    seconds = 6 * params * tokens_per_step * steps / (devices * FLOPS_PER_DEVICE * MFU) + overhead

steps = epochs * ceil(examples / batch_size); tokens_per_step = batch_size * TOKENS_PER_EXAMPLE.
LoRA still runs the full forward/backward through the frozen base model, so 6·N·T is the right
order. Parameters come from the model's config.json when readable, else from a size in its name
("1B", "8B"); examples from the dataset's train split when readable. The estimate is a planning
aid shown as "~Ns/~Nm/~Nh"; it never changes what runs.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

GPU_FLOPS = 312e12  # A100 bf16 dense peak
CPU_FLOPS = 5e10  # one modern core, fp32, order of magnitude
MFU = 0.3
TOKENS_PER_EXAMPLE = 32  # short instruction rows (capitalization-sized); coarse
OVERHEAD_S = 60.0  # start-up, model load, checkpoint save


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


def estimate_seconds(*, params: float | None, examples: int | None, epochs: int, batch_size: int,
                     gpus: int) -> float | None:
    if params is None or examples is None:
        return None
    steps = epochs * math.ceil(examples / max(batch_size, 1))
    flops = 6 * params * batch_size * TOKENS_PER_EXAMPLE * steps
    rate = (gpus * GPU_FLOPS if gpus > 0 else CPU_FLOPS) * MFU
    return flops / rate + (OVERHEAD_S if gpus > 0 else 5.0)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 90:
        return f"~{max(1, round(seconds))}s"
    if seconds < 90 * 60:
        return f"~{round(seconds / 60)}m"
    return f"~{seconds / 3600:.1f}h"
