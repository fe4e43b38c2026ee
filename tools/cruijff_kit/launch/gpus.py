"""GPUs from nvidia-smi (asked through util/procs.py), ranked for a new job (most free memory first,
then least busy)."""
from __future__ import annotations

import re
from typing import Any

from ..errors import CkError
from ..util import procs

FIELDS = ("index", "name", "memory.total", "memory.used", "utilization.gpu")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def _number(text: str) -> float | None:
    """'81920 MiB' -> 81920.0; '[N/A]' / '[Not Supported]' -> None."""
    match = _NUMBER.search(text)
    return float(match.group()) if match else None


def parse_query(output: str) -> list[dict[str, Any]]:
    """Parse `nvidia-smi --query-gpu=index,name,memory.total,memory.used,utilization.gpu
    --format=csv,noheader` (with or without `nounits`)."""
    gpus = []
    for lineno, line in enumerate(output.splitlines(), 1):
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) < 5:
            raise CkError(f"unexpected nvidia-smi line {lineno}: {line!r} (want 5 comma-separated fields)",
                          field="nvidia-smi")
        # GPU names never hold commas in practice, but join the middle to be safe.
        index, name, total, used, util = cells[0], ",".join(cells[1:-3]), *cells[-3:]
        total_mib, used_mib = _number(total), _number(used)
        free_mib = total_mib - used_mib if total_mib is not None and used_mib is not None else None
        gpus.append({
            "index": int(index),
            "name": name,
            "memory_total_mib": total_mib,
            "memory_used_mib": used_mib,
            "memory_free_mib": free_mib,
            "utilization_pct": _number(util),
        })
    return gpus


def rank(gpus: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def key(gpu: dict[str, Any]) -> tuple:
        free = gpu["memory_free_mib"]
        util = gpu["utilization_pct"]
        return (-(free if free is not None else -1), util if util is not None else 101, gpu["index"])

    ranked = sorted(gpus, key=key)
    return [dict(g, rank=i) for i, g in enumerate(ranked)]


def describe(gpu: dict[str, Any]) -> str:
    """The seed's option text: 'NVIDIA A100 — 2.1/80.0 GB used, 0% util'."""
    used = gpu["memory_used_mib"] or 0
    total = gpu["memory_total_mib"] or 0
    util = gpu["utilization_pct"]
    return (f"{gpu['name']} — {used / 1024:.1f}/{total / 1024:.1f} GB used, "
            f"{'?' if util is None else f'{util:g}'}% util")


def query() -> dict[str, Any]:
    """Every GPU, ranked; `device` is 'cpu' when there is no nvidia-smi or it lists nothing."""
    q = procs.query_gpus(FIELDS)
    if not q.ok:
        return {"device": "cpu", "gpus": [], "reason": q.reason, "suggested": ""}
    gpus = rank(parse_query("\n".join(", ".join(row) for row in q.rows)))
    for gpu in gpus:
        gpu["description"] = describe(gpu)
    if not gpus:
        return {"device": "cpu", "gpus": [], "reason": "nvidia-smi lists no GPUs", "suggested": ""}
    return {"device": "cuda", "gpus": gpus, "reason": None, "suggested": str(gpus[0]["index"])}


def resolve(spec: str | None) -> str | None:
    """--gpus value -> CUDA_VISIBLE_DEVICES value (None: leave the variable alone).

    'cpu'/'none' hide every GPU; 'auto' takes the best-ranked one; 'all' every one;
    '0,1' is checked against what nvidia-smi reports.
    """
    if spec is None:
        return None
    spec = spec.strip()
    if spec.lower() in ("cpu", "none"):
        return ""
    if not re.fullmatch(r"auto|all|\d+(,\d+)*", spec.lower()):
        raise CkError(f"invalid --gpus {spec!r}", field="--gpus",
                      hint="use GPU indices like 0 or 0,1, or auto, all, cpu")
    info = query()
    if not info["gpus"]:
        raise CkError(f"--gpus {spec} asked for GPUs but none are available ({info['reason']})",
                      field="--gpus", hint="use --gpus cpu, or run where nvidia-smi lists GPUs")
    if spec.lower() == "auto":
        return info["suggested"]
    known = [g["index"] for g in info["gpus"]]
    if spec.lower() == "all":
        return ",".join(str(i) for i in sorted(known))
    wanted = [int(i) for i in spec.split(",")]
    missing = [i for i in wanted if i not in known]
    if missing:
        raise CkError(f"--gpus {spec}: no GPU with index {', '.join(map(str, missing))}",
                      field="--gpus", hint=f"nvidia-smi lists {', '.join(map(str, sorted(known)))}")
    return ",".join(str(i) for i in wanted)


def memory_by_pid() -> dict[int, float]:
    """GPU memory (MiB) each process uses; empty without nvidia-smi."""
    q = procs.query_gpus(("pid", "used_memory"), apps=True)
    out: dict[int, float] = {}
    for cells in q.rows:
        if len(cells) == 2 and cells[0].isdigit() and (mib := _number(cells[1])) is not None:
            out[int(cells[0])] = out.get(int(cells[0]), 0.0) + mib
    return out
