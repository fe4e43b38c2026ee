"""PEFT 0.21 next to torchtune 0.6.1's torchao: PEFT raises ImportError ("incompatible version of
torchao ... only versions above 0.16.0") whenever torchao < 0.16 is installed, on the first LoRA layer
it builds, although ck never quantizes with torchao. torchtune's pinned torchao must stay, so PEFT is
told torchao is absent (its torchao dispatch only serves torchao-quantized base weights).
"""
from __future__ import annotations


def peft_without_old_torchao() -> None:
    import importlib.metadata as md

    from packaging.version import Version

    try:
        if Version(md.version("torchao")) >= Version("0.16.0"):
            return
    except md.PackageNotFoundError:
        return
    import importlib

    def absent() -> bool:
        return False

    # where PEFT (0.18 - 0.21) binds the name; a module a given version lacks is skipped
    for name in ("peft.import_utils", "peft.tuners.lora.torchao", "peft.utils.quantization_utils"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(module, "is_torchao_available"):
            module.is_torchao_available = absent
