"""Crash-safe file writes and an exclusive lock: state on disk is the truth, so never half-write it."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator


def atomic_write_text(path: str | Path, text: str, *, mode: int | None = None, durable: bool = True) -> None:
    """Write `text` to `path` via a temp file in the same directory and an atomic rename (never
    half written). `durable`: fsync before the rename, so the content survives a power cut too;
    files that are regenerated from the plan (scaffold output) skip it."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except FileNotFoundError:  # the folder first (only then: a mkdir per write costs at 1,000 runs)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        # mkstemp makes 0600 files; generated files follow the umask like any other (lab mates read plans)
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_json(path: str | Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_if_changed(path: str | Path, text: str, *, mode: int | None = None, durable: bool = False) -> str:
    """Atomically write unless the content is identical. Returns 'created', 'updated' or 'unchanged'.
    For generated files (scaffold output): `ck scaffold` rewrites them from the plan, so no fsync
    by default -- a crash costs a re-run of scaffold, never a half-written file."""
    path = Path(path)
    if path.exists():
        if path.read_text(encoding="utf-8") == text:
            return "unchanged"
        atomic_write_text(path, text, mode=mode, durable=durable)
        return "updated"
    atomic_write_text(path, text, mode=mode, durable=durable)
    return "created"


class LockHeld(Exception):
    """Another process holds the lock; `holder` is what it wrote into the lock file."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is held by {holder or 'another process'}")
        self.path = path
        self.holder = holder


@contextlib.contextmanager
def exclusive_lock(path: str | Path, *, owner: str = "", blocking: bool = False) -> Iterator[Path]:
    """flock-based lock; released by the kernel if the holder dies (kill -9 safe)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                holder = os.pread(fd, 4096, 0).decode(errors="replace").strip()
                raise LockHeld(path, holder) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, (owner or f"pid {os.getpid()}").encode(), 0)
        yield path
    finally:
        os.close(fd)  # closing drops the flock
