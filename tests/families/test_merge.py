"""The evaluation's merge of an adapter-only epoch without torchtune (finetune/merge.merge_renamed)
is bit-identical to torchtune's own merge and save (merge_with_torchtune: FullModelHFCheckpointer +
get_merged_lora_ckpt), for every family it takes: q/k permuted (Llama 3.1 sharded and untied with
LoRA on the output, Llama 3.2 tied, Mistral) and renamed only (Qwen2.5 tied and untied, with q/k/v
biases). The adapter is a torchtune-format one with every module LoRA can target, its B non-zero."""
from __future__ import annotations

import json

import pytest

from cruijff_kit.errors import CkError
from cruijff_kit.finetune.merge import merge_renamed, merge_with_torchtune
from cruijff_kit.finetune.models import resolve_model
from tests.families.names import FAMILIES

MODULES = ("attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.output_proj", "mlp.w1", "mlp.w2", "mlp.w3")
RANK, ALPHA = 4, 8.0


def _adapter(base, path, seed: int) -> None:
    """A torchtune LoRA state dict for every target of the base model (as lora_single_device saves
    adapter_model.pt): lora_a (rank x in), lora_b (out x rank), float32."""
    import torch
    from safetensors import safe_open

    shapes = {}
    for f in base.glob("*.safetensors"):
        with safe_open(str(f), "pt") as fh:
            shapes.update({k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()})
    cfg = json.loads((base / "config.json").read_text())
    gen = torch.Generator().manual_seed(seed)
    out = {}
    targets = [(f"layers.{i}.{m}", m) for i in range(cfg["num_hidden_layers"]) for m in MODULES]
    if not cfg.get("tie_word_embeddings"):
        targets.append(("output", "output"))
    hf = {"attn.q_proj": "self_attn.q_proj", "attn.k_proj": "self_attn.k_proj", "attn.v_proj": "self_attn.v_proj",
          "attn.output_proj": "self_attn.o_proj", "mlp.w1": "mlp.gate_proj", "mlp.w2": "mlp.down_proj",
          "mlp.w3": "mlp.up_proj"}
    for name, m in targets:
        key = "lm_head.weight" if m == "output" else f"model.layers.{name.split('.')[1]}.{hf[m]}.weight"
        rows, cols = shapes[key]
        out[f"{name}.lora_a.weight"] = torch.randn(RANK, cols, generator=gen) * 0.1
        out[f"{name}.lora_b.weight"] = torch.randn(rows, RANK, generator=gen) * 0.1
    torch.save(out, path)


def _tensors(d):
    from safetensors.torch import load_file

    return {k: v for f in sorted(d.glob("*.safetensors")) for k, v in load_file(str(f)).items()}


@pytest.mark.parametrize("name", FAMILIES)
def test_merge_without_torchtune_equals_torchtunes(name, family_model, tmp_path):
    import torch

    base = family_model(name)
    spec = resolve_model(str(base))
    _adapter(base, tmp_path / "adapter_model.pt", seed=len(name))
    ours = merge_renamed(base, spec.checkpointer, tmp_path / "adapter_model.pt", RANK, ALPHA, tmp_path / "ours")
    assert ours is not None, f"{spec.checkpointer['model_type']} should merge without torchtune"
    theirs = merge_with_torchtune(base, spec.checkpointer, tmp_path / "adapter_model.pt", RANK, ALPHA,
                                  tmp_path / "theirs")
    a, b = _tensors(ours), _tensors(theirs)
    assert a.keys() == b.keys()
    assert [k for k in a if a[k].dtype != b[k].dtype or not torch.equal(a[k], b[k])] == []
    original = _tensors(base)
    changed = [k for k in a if k in original and not torch.equal(a[k], original[k].to(a[k].dtype))]
    assert len(changed) == len(torch.load(tmp_path / "adapter_model.pt", weights_only=True)) // 2
    index = json.loads((ours / "model.safetensors.index.json").read_text())["weight_map"]
    assert set(index) == set(a) and all((ours / f).is_file() for f in index.values())
    assert (ours / "config.json").read_bytes() == (base / "config.json").read_bytes()
    assert not list(ours.glob("adapter_*"))


def test_an_adapter_key_outside_the_renaming_goes_to_torchtune(family_model, tmp_path):
    import torch

    base = family_model("Qwen2.5-0.5B-Instruct")
    spec = resolve_model(str(base))
    _adapter(base, tmp_path / "adapter_model.pt", seed=1)
    state = torch.load(tmp_path / "adapter_model.pt", weights_only=True)
    state["layers.0.attn.q_proj.magnitude"] = torch.ones(4)  # DoRA: not a plain LoRA merge
    torch.save(state, tmp_path / "dora.pt")
    assert merge_renamed(base, spec.checkpointer, tmp_path / "dora.pt", RANK, ALPHA, tmp_path / "o") is None
    assert not (tmp_path / "o").exists()
    state = {k.replace("layers.0.", "layers.99.") if k.startswith("layers.0.") else k: v
             for k, v in torch.load(tmp_path / "adapter_model.pt", weights_only=True).items()}
    torch.save(state, tmp_path / "unfit.pt")
    with pytest.raises(CkError, match="does not fit the base model"):
        merge_renamed(base, spec.checkpointer, tmp_path / "unfit.pt", RANK, ALPHA, tmp_path / "o2")
