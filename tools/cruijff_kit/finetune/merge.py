"""Materialise an adapter-only epoch directory as a merged Hugging Face checkpoint.

The merge is torchtune's own, done as the recipe does it when it saves merged weights: the base
checkpoint is read by FullModelHFCheckpointer (HF -> torchtune names, q/k permutations), the
torchtune-format adapter (adapter_model.pt; not adapter_model.safetensors, whose q_proj torchtune
0.6.1 permutes for Qwen2) is added, get_merged_lora_ckpt folds B@A*alpha/r into the base weights,
and the same checkpointer writes them back in HF format. The result carries ck's chat template.

For the families whose torchtune <-> Hugging Face conversion is a renaming (Qwen2) or a renaming
plus a row permutation of q_proj / k_proj (Llama 3.x, Mistral), the same arithmetic is done
directly on the Hugging Face tensors, without importing torchtune (about 3 s of every evaluation
of an adapter-only epoch): each LoRA'd weight is permuted into torchtune's layout, gets
`(alpha / rank) * lora_b @ lora_a` added in place as get_merged_lora_ckpt adds it, and is permuted
back as tune_to_hf does. The result is bit-identical to torchtune's (tests/families/test_merge.py);
any other model type, or an adapter key outside that mapping, goes through torchtune itself.

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
    rank, alpha = int(adapter_cfg["r"]), float(adapter_cfg["lora_alpha"])
    named = Path(out_dir) / epoch_dir.name  # an evaluation log's model path names what it evaluated
    out = merge_renamed(base, spec.checkpointer, epoch_dir / "adapter_model.pt", rank, alpha, named)
    if out is None:
        out = merge_with_torchtune(base, spec.checkpointer, epoch_dir / "adapter_model.pt", rank, alpha, Path(out_dir))
        if named != out and not named.exists():
            out = out.rename(named)
    stamp_checkpoint(out, base, adapter_only=False)
    return out


def _unfit(base: Path, adapter_file: Path, key: str) -> CkError:
    return CkError(f"adapter does not fit the base model {base} (no {key})", file=adapter_file)


def merge_with_torchtune(base: Path, checkpointer: dict, adapter_file: Path, rank: int, alpha: float,
                         out_dir: Path) -> Path:
    """torchtune's own merge and save: out_dir/epoch_0 (torchtune names it after the epoch argument)."""
    import torch
    from torchtune.modules.peft import get_merged_lora_ckpt
    from torchtune.training import FullModelHFCheckpointer

    ckpt = FullModelHFCheckpointer(checkpoint_dir=str(base), checkpoint_files=checkpointer["checkpoint_files"],
                                   model_type=checkpointer["model_type"], output_dir=str(out_dir))
    state = ckpt.load_checkpoint()["model"]
    adapter = torch.load(adapter_file, map_location="cpu", weights_only=True)
    missing = [k.rsplit(".lora_", 1)[0] + ".weight" for k in adapter if k.rsplit(".lora_", 1)[0] + ".weight" not in state]
    if missing:
        raise _unfit(base, adapter_file, missing[0])
    state.update({k: v.to(state[k.rsplit(".lora_", 1)[0] + ".weight"].dtype) for k, v in adapter.items()})
    merged = get_merged_lora_ckpt(state, rank=rank, alpha=alpha)
    ckpt.save_checkpoint({"model": merged}, epoch=0)
    return Path(out_dir) / "epoch_0"


# model types whose torchtune <-> HF conversion is a key renaming; True: q_proj / k_proj rows are
# also permuted (torchtune/models/convert_weights.py hf_to_tune, tune_to_hf)
RENAMED_TYPES = {"QWEN2": False, "LLAMA3": True, "LLAMA3_2": True, "MISTRAL": True}
# torchtune module (the part after layers.N.) -> its Hugging Face module
LAYER_MODULES = {"attn.q_proj": "self_attn.q_proj", "attn.k_proj": "self_attn.k_proj",
                 "attn.v_proj": "self_attn.v_proj", "attn.output_proj": "self_attn.o_proj",
                 "mlp.w1": "mlp.gate_proj", "mlp.w2": "mlp.down_proj", "mlp.w3": "mlp.up_proj"}
SHARD_NAME = "model-{:05d}-of-{:05d}.safetensors"  # torchtune's names for the shards it saves


def hf_weight_of(module: str) -> str | None:
    """The Hugging Face weight a torchtune LoRA module merges into ('layers.3.attn.q_proj' ->
    'model.layers.3.self_attn.q_proj.weight'), or None outside the renaming."""
    if module == "output":
        return "lm_head.weight"
    parts = module.split(".", 2)
    if len(parts) == 3 and parts[0] == "layers" and parts[1].isdigit() and parts[2] in LAYER_MODULES:
        return f"model.layers.{parts[1]}.{LAYER_MODULES[parts[2]]}.weight"
    return None


def merge_renamed(base: Path, checkpointer: dict, adapter_file: Path, rank: int, alpha: float,
                  out: Path) -> Path | None:
    """The merge torchtune would do, on the Hugging Face tensors: out (shards, index, the base's other
    files), or None when the model type or an adapter key is outside the renaming (torchtune merges)."""
    model_type = checkpointer["model_type"]
    if model_type not in RENAMED_TYPES:
        return None
    import torch
    from safetensors.torch import load_file, save_file

    adapter = torch.load(adapter_file, map_location="cpu", weights_only=True)
    modules = sorted({k.rsplit(".lora_", 1)[0] for k in adapter})
    targets = {m: hf_weight_of(m) for m in modules}
    if any(t is None for t in targets.values()) or len(adapter) != 2 * len(modules) or not all(
            f"{m}.lora_{ab}.weight" in adapter for m in modules for ab in "ab"):
        return None
    cfg = json.loads((base / "config.json").read_text())
    shards = [load_file(str(base / f)) for f in sorted(checkpointer["checkpoint_files"])]
    # what torchtune's load drops: rotary caches, and a tied Qwen2's lm_head
    drop = lambda k: "rotary_emb.inv_freq" in k or (  # noqa: E731
        model_type == "QWEN2" and cfg.get("tie_word_embeddings") and "lm_head" in k)
    shards = [{k: v for k, v in shard.items() if not drop(k)} for shard in shards]
    where = {k: i for i, shard in enumerate(shards) for k in shard}
    for module, target in targets.items():
        if target not in where:
            raise _unfit(base, adapter_file, f"{module}.weight")
        weight = shards[where[target]][target]
        lora_a = adapter[f"{module}.lora_a.weight"].to(weight.dtype)
        lora_b = adapter[f"{module}.lora_b.weight"].to(weight.dtype)
        heads = _permuted_heads(model_type, target, cfg)
        tune = _to_tune(weight, heads, cfg) if heads else weight.clone()
        tune += (alpha / rank) * lora_b @ lora_a  # get_merged_lora_ckpt's expression
        shards[where[target]][target] = _to_hf(tune, heads, cfg) if heads else tune
    out.mkdir(parents=True, exist_ok=True)
    weight_map, total = {}, 0
    for i, shard in enumerate(shards):
        name = SHARD_NAME.format(i + 1, len(shards))
        save_file({k: v.contiguous() for k, v in shard.items()}, str(out / name), metadata={"format": "pt"})
        weight_map.update({k: name for k in shard})
        total += sum(v.numel() * v.element_size() for v in shard.values())
    (out / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    _copy_small_files(base, out)
    return out


def _permuted_heads(model_type: str, target: str, cfg: dict) -> int | None:
    if not RENAMED_TYPES[model_type]:
        return None
    if ".q_proj." in target:
        return int(cfg["num_attention_heads"])
    if ".k_proj." in target:
        return int(cfg["num_key_value_heads"])
    return None


def _head_dim(cfg: dict) -> int:
    return int(cfg.get("head_dim") or int(cfg["hidden_size"]) // int(cfg["num_attention_heads"]))


def _to_tune(w, n_heads: int, cfg: dict):
    """hf_to_tune's q/k permutation."""
    hd, dim = _head_dim(cfg), int(cfg["hidden_size"])
    return w.view(n_heads, 2, hd // 2, dim).transpose(1, 2).reshape(hd * n_heads, dim)


def _to_hf(w, n_heads: int, cfg: dict):
    """tune_to_hf's q/k permutation (the inverse)."""
    hd, dim = _head_dim(cfg), int(cfg["hidden_size"])
    return w.view(n_heads, hd // 2, 2, dim).transpose(1, 2).reshape(hd * n_heads, dim)


# what torchtune's save copies beside the weights (training/checkpointing/_utils.py copy_files)
NOT_COPIED = (".pt", ".pth", ".bin", ".safetensors", "model.safetensors.index.json",
              "pytorch_model.bin.index.json", "adapter_config.json", "adapter_model")
MAX_COPIED = 100 * 1024 * 1024


def _copy_small_files(base: Path, out: Path) -> None:
    """The base's configuration and tokenizer files, as torchtune's save copies them."""
    import shutil

    for path in base.rglob("*"):
        rel = path.relative_to(base)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if path.name.endswith(NOT_COPIED) or path.stat().st_size > MAX_COPIED:
            continue
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, out / rel)
