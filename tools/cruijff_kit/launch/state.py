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


# The fields status/stop/diagnose read, with the types they must have; others are kept as they are.
_REQUIRED = {"command": str, "repo": str, "log": str}
_OPTIONAL = {"run_id": str, "pid": int, "pid_start": (int, float, str), "pgid": int, "supervisor_pid": int,
             "supervisor_start": (int, float, str), "exit_code": int, "signal": str, "started": str, "started_ns": int,
             "ended": str, "stopped_by": str, "environment": dict, "gpus": (str, list), "warnings": list, "loss_health": dict,
             "missing_dependencies": dict, "repo_log": str, "wandb_project": str}


def _type_names(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join({str: "a string", int: "an integer", float: "a number", dict: "an object",
                        list: "a list"}[k] for k in kinds)


def check_meta(meta: Any, meta_file: Path) -> dict[str, Any]:
    """meta.json as status/stop/diagnose need it; CkError naming the field otherwise (a file edited
    by hand, or truncated by a full disk, must not surface as a traceback)."""
    if not isinstance(meta, dict):
        raise CkError(f"run metadata is not a JSON object (found {type(meta).__name__})", file=meta_file,
                      hint="the run's state dir is damaged; remove it, or relaunch with `ck launch start`")
    for key, kind in _REQUIRED.items():
        if not isinstance(meta.get(key), kind):
            raise CkError(f"run metadata has no valid {key!r} (must be {_type_names(kind)})", file=meta_file,
                          field=key, hint="the run's state dir is damaged; remove it, or relaunch")
    for key, kind in _OPTIONAL.items():
        value = meta.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise CkError(f"run metadata field {key!r} must be {_type_names(kind)}, not {type(value).__name__}",
                          file=meta_file, field=key, hint="the run's state dir is damaged; remove it, or relaunch")
    health = meta.get("loss_health")
    if health is not None and not isinstance(health.get("state"), str):
        raise CkError("run metadata field 'loss_health' has no 'state'", file=meta_file, field="loss_health",
                      hint="the run's state dir is damaged; remove it, or relaunch")
    return meta


def read_meta(path: Path) -> dict[str, Any]:
    meta_file = path / META
    try:
        data = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CkError(f"cannot read run metadata: {exc}", file=meta_file) from None
    return check_meta(data, meta_file)


def write_meta(path: Path, meta: dict[str, Any]) -> None:
    atomic_write_json(path / META, meta)


def update_meta(path: Path, *, best_effort: bool = False, **changes: Any) -> dict[str, Any]:
    """Read-modify-write meta.json under the run's lock (status and stop may race). best_effort (status,
    which only remembers what it learned): on a read-only launch home the change is not kept, and the
    answer is still given."""
    try:
        with exclusive_lock(path / LOCK, blocking=True):
            meta = read_meta(path)
            meta.update(changes)
            write_meta(path, meta)
    except OSError as exc:
        if best_effort:
            return {**read_meta(path), **changes}
        raise CkError(f"cannot update the run's metadata: {exc.strerror or exc}", file=path / META,
                      hint="the launch home must be writable (set CK_LAUNCH_HOME to a writable folder)") from None
    return meta


def create_run_dir(run_id: str) -> Path:
    """A new run's state dir; a one-line CkError when the launch home cannot hold it."""
    folder = launch_home() / validate_run_id(run_id)
    try:
        folder.mkdir(parents=True, exist_ok=False)
        probe = folder / ".writable"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise CkError(f"cannot create the run's state dir {folder}: {exc.strerror or exc}", field="CK_LAUNCH_HOME",
                      hint="the launch home must be writable: set CK_LAUNCH_HOME to a writable folder") from None
    return folder


def read_exit(path: Path) -> dict[str, Any] | None:
    """The supervisor's exit record, or None while the command runs (or if the supervisor was SIGKILLed)."""
    try:
        record = json.loads((path / EXIT).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        # The wrapper writes it via rename, so a torn file means someone else touched it.
        raise CkError("exit record is not valid JSON", file=path / EXIT) from None
    except OSError as exc:
        raise CkError(f"cannot read the exit record: {exc}", file=path / EXIT) from None
    code = record.get("exit_code") if isinstance(record, dict) else None
    if not isinstance(record, dict) or (code is not None and (not isinstance(code, int) or isinstance(code, bool))):
        raise CkError("exit record is not an object with an integer exit_code", file=path / EXIT, field="exit_code")
    return record


def all_runs() -> list[Path]:
    home = launch_home()
    if not home.is_dir():
        return []
    return sorted(p for p in home.iterdir() if (p / META).is_file())
