"""How much disk a fine-tuned run's output directory will take, for the runs table's Est. Disk.

What torchtune 0.6.1's HF checkpointer writes under output_dir (training/checkpointing/_checkpointer.py):

    epoch_<N>/adapter_model.pt + adapter_model.safetensors   the LoRA weights, twice (torchtune's
                                                             own format and PEFT's), every epoch
    epoch_<N>/model-0000k-of-0000n.safetensors               the merged model, every epoch, only
                                                             with `Save merged weights: true`
    epoch_<N>/<the model directory's other files>            tokenizer, configs: every file under
                                                             100 MB that is not a weight file
    recipe_state/recipe_state.pt                             AdamW's two moments of the adapter,
                                                             overwritten each epoch (epochs > 1)

Weights are stored in the training dtype: bf16 on GPUs, fp32 on CPU. The LoRA parameter count
follows torchtune's builders: rank x (in + out) per adapted projection per layer. Evaluation's
merged copy of an adapter lives in node-local scratch for one job and is not counted here.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

COPIED_FILE_LIMIT = 100 * 1024 * 1024  # torchtune's copy_files skips anything larger
WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")  # never copied into epoch_<N>/
MAX_FILES_WALKED = 2000  # bound the walk over a model directory


def model_shape(model_path: str) -> dict | None:
    """The config.json keys the parameter counts need, or None when it cannot be read."""
    try:
        c = json.loads((Path(model_path) / "config.json").read_text(encoding="utf-8"))
        h, heads = int(c["hidden_size"]), int(c["num_attention_heads"])
        shape = {"hidden": h, "layers": int(c["num_hidden_layers"]), "inter": int(c["intermediate_size"]),
                 "heads": heads, "kv_heads": int(c.get("num_key_value_heads") or heads),
                 "head_dim": int(c.get("head_dim") or h // heads), "vocab": int(c["vocab_size"]),
                 "tied": bool(c.get("tie_word_embeddings", False))}
    except (OSError, KeyError, ValueError, TypeError, ZeroDivisionError):
        return None
    return shape


def model_params(s: dict) -> int:
    """Parameters of a Llama-style decoder (attention, gated MLP, norms, embeddings, output)."""
    h, d = s["hidden"], s["head_dim"]
    attn = h * s["heads"] * d * 2 + h * s["kv_heads"] * d * 2
    mlp = 3 * h * s["inter"]
    per_layer = attn + mlp + 2 * h
    embed = s["vocab"] * h
    return s["layers"] * per_layer + embed + (0 if s["tied"] else embed) + h


def adapter_params(s: dict, *, rank: int, attn_modules, mlp: bool, output: bool) -> int:
    """LoRA parameters: rank x (in + out) for every adapted projection."""
    h, d = s["hidden"], s["head_dim"]
    dims = {"q_proj": (h, s["heads"] * d), "k_proj": (h, s["kv_heads"] * d),
            "v_proj": (h, s["kv_heads"] * d), "output_proj": (s["heads"] * d, h)}
    per_layer = sum(rank * sum(dims[m]) for m in attn_modules if m in dims)
    if mlp:
        per_layer += 3 * rank * (h + s["inter"])
    total = s["layers"] * per_layer
    if output and not s["tied"]:  # tied embeddings: the output projection is never adapted
        total += rank * (h + s["vocab"])
    return total


def copied_files_bytes(model_path: str) -> int:
    """The model directory's files that torchtune copies into every epoch directory."""
    total, seen = 0, 0
    for root, dirs, files in os.walk(model_path):
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        for name in files:
            seen += 1
            if seen > MAX_FILES_WALKED:
                return total
            if name.endswith(WEIGHT_SUFFIXES):
                continue
            try:
                size = os.path.getsize(os.path.join(root, name))
            except OSError:
                continue
            if size <= COPIED_FILE_LIMIT:
                total += size
    return total


def run_disk_bytes(model_path: str, *, epochs: int, rank: int, attn_modules, mlp: bool, output: bool,
                   merged: bool, gpus: int) -> int | None:
    """Bytes a run's output directory will hold when training ends, or None without config.json."""
    s = model_shape(model_path)
    if s is None:
        return None
    width = 2 if gpus > 0 else 4  # bf16 on GPUs, fp32 on CPU
    adapter = adapter_params(s, rank=rank, attn_modules=attn_modules, mlp=mlp, output=output) * width
    per_epoch = 2 * adapter + copied_files_bytes(model_path)
    if merged:
        per_epoch += model_params(s) * width
    recipe_state = 2 * adapter if epochs > 1 else 0
    return epochs * per_epoch + recipe_state


def planned_disk_bytes(model_path: str, value) -> int | None:
    """run_disk_bytes from a run's effective settings; value(key) -> the setting's value."""
    return run_disk_bytes(model_path, epochs=int(value("epochs")), rank=int(value("lora_rank") or 0),
                          attn_modules=value("lora_attn_modules"), mlp=bool(value("apply_lora_to_mlp")),
                          output=bool(value("apply_lora_to_output")), merged=bool(value("save_merged_weights")),
                          gpus=int(value("num_gpus")))


def disk_by_run(exp) -> dict[str, int | None]:
    """Fine-tuned run name -> bytes its output directory will hold (None: config.json unreadable)."""
    return {r.name: planned_disk_bytes(exp.model_path(r.model), lambda k, r=r: exp.value(k, r))
            for r in exp.finetuned_runs}
