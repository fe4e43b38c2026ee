"""Heavy fixtures built once per test session, across pytest-xdist workers."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


def shared_dir(request, tmp_path_factory, name: str) -> Path:
    """A directory every pytest-xdist worker of this session sees (the session's base temp
    directory; its parent under xdist), so a fixture built there is built once per session."""
    base = tmp_path_factory.getbasetemp()
    if getattr(request.config, "workerinput", None) is not None:
        base = base.parent
    return base / name


def build_once(request, tmp_path_factory, name: str, build) -> dict:
    """build(dir) -> JSON-able result, run by the first worker that asks (the others wait on the
    lock and read the result); a failed build is re-raised in every worker that asks."""
    import fcntl

    where = shared_dir(request, tmp_path_factory, name)
    where.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{where}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = Path(f"{where}.json")
        if not done.exists():
            try:
                result = {"ok": True, "value": build(where)}
            except BaseException as exc:  # noqa: BLE001 - recorded, then raised here and in every worker
                result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            done.write_text(json.dumps(result))
        result = json.loads(done.read_text())
    if not result["ok"]:
        pytest.fail(f"shared fixture {name} failed to build: {result['error']}")
    return result["value"]


def quick_hf_batching() -> None:
    """In-process evaluations with inspect's `hf/` provider batch as ck-hf does (evaluate/batching.py):
    the same batches, without inspect's 2-second collection window and 1-second polling per task."""
    from cruijff_kit.evaluate import batching

    batching.install()
