"""Materialise an adapter-only epoch directory as a merged Hugging Face checkpoint.

The merge is torchtune's own, done as the recipe does it when it saves merged weights: the base
checkpoint is read by FullModelHFCheckpointer (HF -> torchtune names, q/k permutations), the
torchtune-format adapter (adapter_model.pt; not adapter_model.safetensors, whose q_proj torchtune
0.6.1 permutes for Qwen2) is added, get_merged_lora_ckpt folds B@A*alpha/r into the base weights,
and the same checkpointer writes them back in HF format. The result carries ck's chat template.

Used by the eval launcher (node-local scratch, removed after the evaluation); imports torch.
"""
from __future__ import annotations

import json
from pathlib import Path

from cruijff_kit.errors import CkError
from cruijff_kit.finetune.prompt_format import read_checkpoint_record, stamp_checkpoint


def materialise(epoch_dir: Path, out_dir: Path, base_model: str | Path | None = None) -> Path:
    """Base model + this epoch's adapter -> out_dir/<the epoch directory's name> (HF format, ck's chat template).

    The base is the one ck_checkpoint.json records (ck's own checkpoints); an adapter trained
    elsewhere (an eval-only run) names it with base_model. When both exist they must agree."""
    import torch
    from torchtune.modules.peft import get_merged_lora_ckpt
    from torchtune.training import FullModelHFCheckpointer

    from cruijff_kit.finetune.models import resolve_model

    epoch_dir = Path(epoch_dir)
    record = read_checkpoint_record(epoch_dir)
    recorded = record.get("base_model") if record else None
    if base_model is not None and recorded and Path(recorded).resolve() != Path(base_model).resolve():
        raise CkError(f"adapter was trained on {recorded}, not on the given base model {base_model}", file=epoch_dir)
    if base_model is None and not recorded:
        raise CkError("adapter directory does not record its base model (no ck_checkpoint.json)", file=epoch_dir,
                      hint="name the base model (an eval-only run's Model column)")
    base = Path(base_model if base_model is not None else recorded)
    spec = resolve_model(str(base))
    adapter_cfg = json.loads((epoch_dir / "adapter_config.json").read_text())
    ckpt = FullModelHFCheckpointer(checkpoint_dir=str(base), checkpoint_files=spec.checkpointer["checkpoint_files"],
                                   model_type=spec.checkpointer["model_type"], output_dir=str(out_dir))
    state = ckpt.load_checkpoint()["model"]
    adapter = torch.load(epoch_dir / "adapter_model.pt", map_location="cpu", weights_only=True)
    missing = [k.rsplit(".lora_", 1)[0] + ".weight" for k in adapter if k.rsplit(".lora_", 1)[0] + ".weight" not in state]
    if missing:
        raise CkError(f"adapter does not fit the base model {base} (no {missing[0]})", file=epoch_dir / "adapter_model.pt")
    state.update({k: v.to(state[k.rsplit(".lora_", 1)[0] + ".weight"].dtype) for k, v in adapter.items()})
    merged = get_merged_lora_ckpt(state, rank=int(adapter_cfg["r"]), alpha=float(adapter_cfg["lora_alpha"]))
    ckpt.save_checkpoint({"model": merged}, epoch=0)
    out = Path(out_dir) / "epoch_0"  # torchtune names it after the epoch argument, not the checkpoint merged
    named = Path(out_dir) / epoch_dir.name  # an evaluation log's model path names what it evaluated
    if named != out and not named.exists():
        out = out.rename(named)
    stamp_checkpoint(out, base, adapter_only=False)
    return out
