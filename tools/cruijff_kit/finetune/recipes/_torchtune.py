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
