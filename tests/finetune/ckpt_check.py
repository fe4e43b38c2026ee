"""Checks on a torchtune LoRA output epoch_N/ directory against its base checkpoint."""
from __future__ import annotations

import json
from pathlib import Path

# torchtune module names -> Hugging Face (Qwen2/Llama) module names
_TT_TO_HF = {
    "attn.q_proj": "self_attn.q_proj", "attn.k_proj": "self_attn.k_proj", "attn.v_proj": "self_attn.v_proj",
    "attn.output_proj": "self_attn.o_proj", "mlp.w1": "mlp.gate_proj", "mlp.w2": "mlp.down_proj",
    "mlp.w3": "mlp.up_proj",
}


def load_merged(epoch_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    index = json.loads((epoch_dir / "model.safetensors.index.json").read_text())
    merged: dict[str, torch.Tensor] = {}
    for name in sorted(set(index["weight_map"].values())):
        merged.update(load_file(str(epoch_dir / name)))
    return merged


def adapter_deltas(epoch_dir: Path) -> dict[str, torch.Tensor]:
    """HF weight name -> (alpha/r) * B @ A from the torchtune-format adapter_model.pt.

    (Not adapter_model.safetensors: torchtune 0.6.1 permutes its q_proj for Qwen2.)"""
    import torch

    cfg = json.loads((epoch_dir / "adapter_config.json").read_text())
    scale = cfg["lora_alpha"] / cfg["r"]
    adapter = torch.load(epoch_dir / "adapter_model.pt", weights_only=True)
    deltas = {}
    for key, a in adapter.items():
        if key.endswith(".lora_a.weight"):
            module = key[: -len(".lora_a.weight")]
            _, layer, rest = module.split(".", 2)
            b = adapter[f"{module}.lora_b.weight"]
            deltas[f"model.layers.{layer}.{_TT_TO_HF[rest]}.weight"] = scale * b @ a
    return deltas


def merge_error(epoch_dir: Path, base_dir: Path) -> tuple[float, float]:
    """(max |merged - (base + own delta)| over LoRA weights, max |merged - base| elsewhere)."""
    from safetensors.torch import load_file

    base = load_file(str(base_dir / "model.safetensors"))
    merged = load_merged(epoch_dir)
    deltas = adapter_deltas(epoch_dir)
    assert set(merged) == set(base)
    assert deltas and all(d.abs().max() > 0 for d in deltas.values()), "LoRA B is zero: nothing trained"
    lora_err = max((merged[k] - (base[k] + d)).abs().max().item() for k, d in deltas.items())
    other = max((merged[k] - base[k]).abs().max().item() for k in merged if k not in deltas)
    return lora_err, other
