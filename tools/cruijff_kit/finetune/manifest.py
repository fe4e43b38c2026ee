"""manifest.json: what a fine-tuning job ran with, written by the job itself before it trains.

`python -m cruijff_kit.finetune.manifest` in a run directory (finetune.slurm calls it) records the
resolved torchtune config and its sha256, the setup file's seed, the dataset's sha256, the job
script's sha256, the versions of the packages that shape the result, and the GPU model and driver
when nvidia-smi answers. `ck rerun` repeats a cell from the run's setup file; this file is the
evidence of what happened. Never fatal: a manifest that cannot be written is said on stderr and
training goes on.
"""
from __future__ import annotations

import hashlib
import json
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

from ..state.yaml_input import read_mapping_or_empty

PACKAGES = ("cruijff_kit", "torch", "torchtune", "torchao", "transformers", "peft", "trl", "inspect_ai",
            "safetensors", "tokenizers", "datasets", "numpy")


def _sha256(path: Path) -> str | None:
    try:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    except OSError:
        return None


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = version(name.replace("_", "-"))
        except PackageNotFoundError:
            try:
                out[name] = version(name)
            except PackageNotFoundError:
                out[name] = None
    return out


def _gpus() -> list[dict]:
    from ..util.procs import query_gpus

    q = query_gpus(("name", "driver_version", "memory.total"), timeout=10.0)
    return [{"name": r[0], "driver": r[1] if len(r) > 1 else None, "memory": r[2] if len(r) > 2 else None}
            for r in q.rows] if q.ok else []


def manifest(run_dir: Path) -> dict:
    from ..util.hashing import dataset_sha256

    setup_path, config_path = run_dir / "setup_finetune.yaml", run_dir / "finetune.yaml"
    setup = read_mapping_or_empty(setup_path)
    config_text = config_path.read_text(encoding="utf-8") if config_path.is_file() else ""
    config = read_mapping_or_empty(config_path)
    ds = config.get("dataset") if isinstance(config.get("dataset"), dict) else {}
    # the setup file names the dataset; a config written without one (by hand) names its files
    dataset = str(setup.get("dataset") or ds.get("data_files") or ds.get("data_dir") or "")
    return {
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "run": setup.get("run_name") or run_dir.name,
        "config": config,
        "config_sha256": hashlib.sha256(config_text.encode()).hexdigest() if config_text else None,
        "setup_sha256": _sha256(setup_path),
        "job_script_sha256": _sha256(run_dir / "finetune.slurm"),
        "seed": config.get("seed", setup.get("seed")),
        "dataset": dataset,
        "dataset_sha256": (dataset_sha256(dataset) or None) if dataset else None,
        "model_checkpoint": setup.get("model_checkpoint") or (
            config["checkpointer"].get("checkpoint_dir") if isinstance(config.get("checkpointer"), dict) else None),
        "packages": _versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "gpus": _gpus(),
    }


def write(run_dir: Path) -> Path:
    from ..util.fs import atomic_write_text

    path = run_dir / "manifest.json"
    atomic_write_text(path, json.dumps(manifest(run_dir), indent=2, sort_keys=True, default=str) + "\n")
    return path


def main() -> int:
    try:
        write(Path.cwd())
    except Exception as exc:  # a record of the run must never stop the run
        print(f"manifest.json not written: {type(exc).__name__}: {exc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
