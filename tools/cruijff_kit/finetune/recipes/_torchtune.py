"""Load one of torchtune's installed recipe files as a module.

torchtune ships its recipes in a top-level `recipes/` folder whose __init__.py refuses imports,
so `import recipes.lora_finetune_single_device` cannot work; the file is loaded by path instead.
Nothing is copied: we subclass or rebind what the installed file defines.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_recipe(name: str) -> ModuleType:
    module_name = f"_torchtune_recipe_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    import torchtune

    path = Path(torchtune.__file__).resolve().parent.parent / "recipes" / f"{name}.py"
    if not path.is_file():
        raise ImportError(f"torchtune recipe not found: {path} (is torchtune 0.6.1 installed?)")
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def stamp_epoch(checkpointer, epoch: int, *, adapter_only: bool) -> None:
    """After torchtune saved epoch_<epoch>: ck's chat template + ck_checkpoint.json (base path, format)."""
    from cruijff_kit.finetune.prompt_format import stamp_checkpoint

    stamp_checkpoint(Path(checkpointer._output_dir) / f"epoch_{epoch}", Path(checkpointer._checkpoint_dir),
                     adapter_only=adapter_only)
    record_peak_memory(Path(checkpointer._output_dir), epoch)


PEAK_MEMORY_FILE = "ck_peak_memory.json"  # in <output_dir>/logs/, read by run/resources.py


def record_peak_memory(output_dir: Path, epoch: int) -> None:
    """This process's peak RSS and (on a GPU) peak reserved GPU memory so far: measured where any
    executor runs it, so the local executor reports memory too (SLURM accounting, when present,
    measures the whole job and wins). Rank 0's figures in a distributed run."""
    import json
    import resource

    import torch

    from cruijff_kit.util.fs import atomic_write_text

    record = {"epoch": epoch, "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    if torch.cuda.is_available():
        record["peak_gpu_bytes"] = int(torch.cuda.max_memory_reserved())
    try:
        (output_dir / "logs").mkdir(parents=True, exist_ok=True)
        atomic_write_text(output_dir / "logs" / PEAK_MEMORY_FILE, json.dumps(record) + "\n")
    except OSError:
        pass  # a measurement, never a reason to fail training after its checkpoint is saved
