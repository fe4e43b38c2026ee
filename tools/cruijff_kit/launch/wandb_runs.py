"""Find a run's wandb run (URL or local directory) from its log, and read its latest metrics.

Metrics come, in order of preference, from the "Run summary:" block wandb prints at finish,
`files/wandb-summary.json` (online runs keep it up to date), or the run's `.wandb` transaction
log (offline runs write only that while running). The `.wandb` file is a leveldb-style log of
protobuf records: 7-byte file header, 32 KiB blocks, each record chunk `crc32 u32, length u16,
type u8` (1 full, 2 first, 3 middle, 4 last).
"""
from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

_URL = re.compile(r"https?://\S*wandb\S*/runs/[A-Za-z0-9_-]+")
_RUN_DIR = re.compile(r"(/\S*?(?:offline-run|run)-\d{8}_\d{6}-[A-Za-z0-9]+)")
_LOCAL = re.compile(r"Run data is saved locally in\s+(\S+)")
_SUMMARY_ROW = re.compile(r"^wandb:\s+(\S+)\s+(\S+)\s*$")

_BLOCK = 32768
_HEADER = 7


def find_run(log_text: str, repo: Path | None = None) -> dict[str, Any]:
    urls = _URL.findall(log_text)
    local = _LOCAL.findall(log_text) or _RUN_DIR.findall(log_text)
    run_dir = None
    for candidate in reversed(local):
        path = Path(candidate.rstrip(".,"))
        if not path.is_absolute() and repo is not None:
            path = repo / path
        if path.is_dir():
            run_dir = path
            break
    offline = bool(run_dir and run_dir.name.startswith("offline-run-")) or "offline" in log_text and not urls
    return {"url": urls[-1] if urls else None, "run_dir": str(run_dir) if run_dir else None,
            "offline": offline if (urls or run_dir) else None,
            "sync_command": f"wandb sync {run_dir}" if run_dir and run_dir.name.startswith("offline-run-") else None}


def summary_from_log(log_text: str) -> dict[str, str]:
    """The 'wandb: Run summary:' block printed by wandb.finish()."""
    block = log_text.rsplit("Run summary:", 1)
    if len(block) < 2:
        return {}
    out: dict[str, str] = {}
    for line in block[1].splitlines()[1:]:
        match = _SUMMARY_ROW.match(line)
        if not match:
            break
        out[match.group(1)] = match.group(2)
    return out


def _records(data: bytes):
    """Complete records of a .wandb file; a half-written tail (run still going) is ignored."""
    pos, pending = _HEADER, b""
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:
            pos += left
            continue
        chunk = data[pos + 7:pos + 7 + length]
        if len(chunk) < length:
            return
        pos += 7 + length
        if kind in (1, 2):
            pending = chunk
        else:
            pending += chunk
        if kind in (1, 4):
            yield pending
            pending = b""


def metrics_from_datastore(path: Path) -> dict[str, Any]:
    """Latest value of every key in the run's history, read from its .wandb file."""
    from wandb.proto import wandb_internal_pb2 as pb  # heavy; only diagnose needs it

    data = path.read_bytes()
    if not data.startswith(b":W&B"):
        return {}
    latest: dict[str, Any] = {}
    for raw in _records(data):
        record = pb.Record()
        try:
            record.ParseFromString(raw)
        except Exception:  # a corrupt record should not hide the rest
            continue
        if record.WhichOneof("record_type") != "history":
            continue
        for item in record.history.item:
            key = item.key or "/".join(item.nested_key)
            if key.startswith("_") and key != "_step":  # wandb's bookkeeping (_runtime, _timestamp…)
                continue
            try:
                latest[key] = json.loads(item.value_json)
            except json.JSONDecodeError:
                latest[key] = item.value_json
    return latest


def latest_metrics(run_dir: str | None, log_text: str) -> tuple[dict[str, Any], str | None]:
    from_log = summary_from_log(log_text)
    if from_log:
        return from_log, "log"
    if not run_dir:
        return {}, None
    folder = Path(run_dir)
    summary = folder / "files" / "wandb-summary.json"
    if summary.is_file():
        try:
            return json.loads(summary.read_text(encoding="utf-8")), str(summary)
        except json.JSONDecodeError:
            pass
    for datastore in sorted(folder.glob("*.wandb")):
        try:
            metrics = metrics_from_datastore(datastore)
        except ImportError:
            return {}, None
        if metrics:
            return metrics, str(datastore)
    return {}, None
