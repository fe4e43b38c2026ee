"""Where a launched run's state lives, and its metadata.

One directory per run: `$CK_LAUNCH_HOME/<run_id>/` when CK_LAUNCH_HOME is set, otherwise
`~/.cache/cruijff_kit/launch/<run_id>/`. It holds

    run.sh      the command with its environment (kept so the launch can be repeated by hand)
    pid         the command's pid, written by util/supervise.py (also its process-group id)
    train.log   stdout + stderr of the command (<repo>/experiment.log links here)
    exit.json   written by the supervisor, atomically, when the command ends: exit code, signal,
                ISO time
    meta.json   everything `start` resolved, plus what status/stop learned later (exit code…)
    lock        flock taken around every read-modify-write of meta.json
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
import secrets
from pathlib import Path
from typing import Any

from ..errors import CkError
from ..util.fs import atomic_write_json, exclusive_lock

RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

META = "meta.json"
EXIT = "exit.json"
LOG = "train.log"
PID = "pid"
WRAPPER = "run.sh"
LOCK = "lock"


def launch_home() -> Path:
    env = os.environ.get("CK_LAUNCH_HOME")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "cruijff_kit" / "launch"


def new_run_id(repo: Path) -> str:
    # Repo names may hold anything; keep only what run ids allow so the id is also a safe dir name.
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", repo.resolve().name).strip("-._") or "run"
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stem[:40]}-{stamp}-{secrets.token_hex(2)}"


def validate_run_id(run_id: str) -> str:
    if not RUN_ID_RE.fullmatch(run_id) or run_id in (".", ".."):
        raise CkError(
            f"invalid run id {run_id!r}",
            field="RUN_ID",
            hint="run ids look like myrepo-20250101-120000-ab12; list them with `ck launch list`",
        )
    return run_id


def run_dir(run_id: str) -> Path:
    """The state dir of an existing run; CkError (exit 2) when there is none."""
    validate_run_id(run_id)
    path = launch_home() / run_id
    if not (path / META).is_file():
        raise CkError(
            f"unknown run id {run_id!r}: no {META} under {path}",
            field="RUN_ID",
            hint="list known runs with `ck launch list` (state dir: $CK_LAUNCH_HOME or ~/.cache/cruijff_kit/launch)",
        )
    return path


def read_meta(path: Path) -> dict[str, Any]:
    meta_file = path / META
    try:
        return json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CkError(f"cannot read run metadata: {exc}", file=meta_file) from None


def write_meta(path: Path, meta: dict[str, Any]) -> None:
    atomic_write_json(path / META, meta)


def update_meta(path: Path, **changes: Any) -> dict[str, Any]:
    """Read-modify-write meta.json under the run's lock (status and stop may race)."""
    with exclusive_lock(path / LOCK, blocking=True):
        meta = read_meta(path)
        meta.update(changes)
        write_meta(path, meta)
    return meta


def read_exit(path: Path) -> dict[str, Any] | None:
    """The supervisor's exit record, or None while the command runs (or if the supervisor was SIGKILLed)."""
    try:
        return json.loads((path / EXIT).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError:
        # The wrapper writes it via rename, so a torn file means someone else touched it.
        raise CkError("exit record is not valid JSON", file=path / EXIT) from None


def all_runs() -> list[Path]:
    home = launch_home()
    if not home.is_dir():
        return []
    return sorted(p for p in home.iterdir() if (p / META).is_file())
