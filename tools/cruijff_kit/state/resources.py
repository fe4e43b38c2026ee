"""What each finished job used: elapsed time, peak memory, GPU utilisation / memory, tokens/s.

Sources, each read once per call and bounded:
- the ledger (elapsed = the attempt's start..end, any executor);
- SLURM accounting: ONE `sacct` for every SLURM job asked about (MaxRSS over the job's steps,
  ElapsedRaw); the local test cluster gathers it with jobacct_gather/linux;
- the job's own GPU samples, `ck-gpu-<job id>.csv` beside its script (nvidia-smi every 15 s,
  written by the generated finetune and eval scripts when the job sees GPUs);
- the training process's own peak RSS / peak reserved GPU memory, <output_dir>/logs/ck_peak_memory.json
  (written at each epoch end by our recipes: memory for the local executor too);
- torchtune's DiskLogger lines (`tokens_per_second_per_gpu`) in <output_dir>/logs/, through the
  one reader of those logs (analyze/loss_logs.py), times the job's GPU count.

`job_resources` is used by `ck status` (column RESOURCES, and "resources" in --json) and is
available to analysis; `format_resources` is the one-cell text.
"""
from __future__ import annotations

import re
import statistics
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable
from ..util.formats import seconds_between, size_short

MAX_SAMPLE_BYTES = 4_000_000  # GPU sample files are read up to this size
_SIZE = re.compile(r"^([\d.]+)([KMGTP]?)$", re.I)
_UNITS = {"": 1, "K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4, "P": 1024 ** 5}


@dataclass
class Resources:
    elapsed_s: float | None = None
    max_rss_bytes: int | None = None
    gpu_util_pct: float | None = None  # mean over samples and GPUs
    gpu_mem_bytes: int | None = None  # peak over samples, the busiest GPU
    tokens_per_s: float | None = None  # whole job (per-GPU figure x GPUs), median over steps

    def to_dict(self) -> dict:
        return asdict(self)


def parse_size(text: str) -> int | None:
    """sacct sizes: '97000K', '1.50G', '0'."""
    m = _SIZE.match(text.strip())
    if not m:
        return None
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def sacct_usage(job_ids: Iterable[str], run: Callable[..., subprocess.CompletedProcess] | None = None
                ) -> dict[str, dict]:
    """{job id: {"max_rss": bytes|None, "elapsed": seconds|None}} from one sacct call over the
    allocations and their steps; {} when sacct is missing or fails (no accounting)."""
    ids = [j for j in dict.fromkeys(str(j) for j in job_ids) if re.fullmatch(r"\d+", j)]
    if not ids:
        return {}
    argv = ["sacct", "--noheader", "--parsable2", f"--jobs={','.join(ids)}", "--format=JobID,ElapsedRaw,MaxRSS"]
    try:
        p = (run or subprocess.run)(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if p.returncode != 0:
        return {}
    out: dict[str, dict] = {}
    for line in p.stdout.splitlines():
        cols = line.split("|")
        if len(cols) < 3:
            continue
        job = cols[0].split(".", 1)[0]
        if job not in ids:
            continue
        row = out.setdefault(job, {"max_rss": None, "elapsed": None})
        if "." not in cols[0] and cols[1].strip().isdigit():
            row["elapsed"] = float(cols[1])
        rss = parse_size(cols[2]) if cols[2].strip() else None
        if rss is not None and (row["max_rss"] is None or rss > row["max_rss"]):
            row["max_rss"] = rss
    return out


def gpu_samples(path: Path) -> tuple[float | None, int | None]:
    """(mean utilisation %, peak memory bytes) from nvidia-smi
    `--query-gpu=timestamp,index,utilization.gpu,memory.used --format=csv,noheader,nounits` lines."""
    try:
        with open(path, "rb") as fh:
            text = fh.read(MAX_SAMPLE_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None, None
    utils, mems = [], []
    for line in text.splitlines():
        cols = [c.strip() for c in line.split(",")]
        if len(cols) < 4:
            continue
        try:
            utils.append(float(cols[2]))
            mems.append(int(float(cols[3]) * 1024 ** 2))  # MiB
        except ValueError:
            continue
    if not utils:
        return None, None
    return statistics.fmean(utils), max(mems)


def recorded_peaks(output_dir: Path) -> tuple[int | None, int | None]:
    """(peak RSS, peak GPU memory) the training process recorded at its last epoch end
    (finetune/recipes/_torchtune.record_peak_memory); (None, None) when absent or unreadable."""
    import json

    try:
        with open(Path(output_dir) / "logs" / "ck_peak_memory.json", "rb") as fh:
            data = json.loads(fh.read(4096))
    except (OSError, ValueError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    ints = [v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None
            for v in (data.get("peak_rss_bytes"), data.get("peak_gpu_bytes"))]
    return ints[0], ints[1]


def _elapsed(attempt: dict) -> float | None:
    return seconds_between(attempt.get("started"), attempt.get("ended"))


def job_resources(plan, entries: dict, *, run: Callable | None = None) -> dict[str, Resources]:
    """Resources of every job of `plan` that the ledger shows finished (COMPLETED or failed)."""
    from .loss_logs import read_loss_curve

    out: dict[str, Resources] = {}
    slurm_ids = {}
    for job in plan.jobs:
        e = entries.get(job.key) or {}
        attempts = e.get("attempts") or []
        if not attempts or not attempts[-1].get("ended"):
            continue
        a = attempts[-1]
        r = out[job.key] = Resources(elapsed_s=_elapsed(a))
        jid = str(a.get("job_id") or "")
        if e.get("executor") == "slurm" and jid:
            slurm_ids[jid] = job.key
        util, mem = gpu_samples(job.script.parent / f"ck-gpu-{jid}.csv") if jid else (None, None)
        r.gpu_util_pct, r.gpu_mem_bytes = util, mem
        if job.kind == "finetune" and job.checkpoints:
            curve = read_loss_curve(job.checkpoints[0].parent, metric="tokens_per_second_per_gpu")
            if curve:
                r.tokens_per_s = statistics.median(v for _, v in curve) * max(job.gpus, 1)
            rss, gpu = recorded_peaks(job.checkpoints[0].parent)
            r.max_rss_bytes = rss  # SLURM accounting below replaces it with the whole job's
            if r.gpu_mem_bytes is None:
                r.gpu_mem_bytes = gpu
    for jid, usage in sacct_usage(slurm_ids, run).items():
        r = out[slurm_ids[jid]]
        if usage["max_rss"] is not None:
            r.max_rss_bytes = usage["max_rss"]
        if usage["elapsed"] is not None:
            r.elapsed_s = usage["elapsed"]
    return out


def format_resources(r: Resources | None) -> str:
    """'RSS 1.2G, GPU 87% 30.1G, 812 tok/s' (elapsed is the DURATION column)."""
    if r is None:
        return ""
    parts = []
    if r.max_rss_bytes is not None:
        parts.append(f"RSS {size_short(r.max_rss_bytes)}")
    if r.gpu_util_pct is not None:
        parts.append(f"GPU {r.gpu_util_pct:.0f}% {size_short(r.gpu_mem_bytes or 0)}")
    if r.tokens_per_s is not None:
        parts.append(f"{r.tokens_per_s:.0f} tok/s")
    return ", ".join(parts)
