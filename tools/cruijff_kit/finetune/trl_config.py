"""setup_finetune.yaml (a dict) -> trl_config.yaml, the config of ck's TRL + PEFT recipe (finetune/trl_train.py).

Same inputs as the torchtune path (the settings schema, with_defaults' checks), one line per
setting in templates/trl_config.yaml.j2. What TRL runs cannot honour in this version is refused
here, at scaffold time, naming the setup_finetune.yaml field (never at the first batch):
torchtune `extra_overrides`, more than one node.
Pure Python: imported by the CLI.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from cruijff_kit.errors import CkError
from cruijff_kit.finetune.config import SETUP_FILE, with_defaults
from cruijff_kit.finetune.trainers import (TRL, TRL_FAMILIES, check_trainer, lora_target_modules, read_config)

CONFIG_FILE = "trl_config.yaml"
RECIPE = "cruijff_kit.finetune.trl_train"
EXAMPLES_FILE = "logs/train_examples.jsonl"  # relative to the run directory (where the config lives)


def _refuse_unhonoured(s: dict, where) -> None:
    if s["extra_overrides"]:
        raise CkError("extra_overrides are torchtune config keys; a trl run has no finetune.yaml to apply them to",
                      file=where, field="extra_overrides", hint="remove them, or train this run with torchtune")
    if int(s["num_nodes"] or 1) > 1:
        raise CkError(f"num_nodes {s['num_nodes']}: ck's trl recipe trains on one node in this version "
                      "(DDP over its GPUs, or CPU ranks, with torchrun)", file=where, field="num_nodes",
                      hint="set num_nodes: 1, or train this run with torchtune")


def trl_config(setup: dict) -> dict[str, Any]:
    """The recipe's settings, in the file's order (every value resolved: the file is the whole truth)."""
    s = with_defaults(setup)
    where = Path(SETUP_FILE)
    _refuse_unhonoured(s, where)
    model_dir = str(s["model_checkpoint"])
    check_trainer(TRL, model_dir, s["model_name"], where=where, fld="trainer")
    cfg = read_config(model_dir) or {}
    tied = bool(cfg.get("tie_word_embeddings", False))
    fam = TRL_FAMILIES.get(str(cfg.get("model_type", "")).lower())
    gpu = int(s["num_gpus"]) > 0
    return {
        "model_checkpoint": model_dir,
        "model_type": fam.model_type if fam else None,
        "dataset": str(s["dataset"]),
        "dataset_format": s["dataset_format"],
        "system_prompt": str(s["system_prompt"] or ""),
        "train_on_input": bool(s["train_on_input"]),
        "output_dir": str(s["output_dir"]),
        "examples_file": EXAMPLES_FILE,
        "lora_rank": int(s["lora_rank"]),
        "lora_alpha": float(s["lora_alpha"]),
        "lora_dropout": float(s["lora_dropout"]),
        "lora_target_modules": lora_target_modules(list(s["lora_attn_modules"]), bool(s["apply_lora_to_mlp"]),
                                                   bool(s["apply_lora_to_output"]), tied),
        "seed": int(s["seed"]),
        "epochs": int(s["epochs"]),
        "max_steps_per_epoch": s["max_steps_per_epoch"],
        "batch_size": int(s["batch_size"]),
        "gradient_accumulation_steps": int(s["gradient_accumulation_steps"]),
        "learning_rate": float(s["learning_rate"]),
        "lr_scheduler": "cosine",
        "lr_warmup_steps": int(s["lr_warmup_steps"]),
        "weight_decay": float(s["weight_decay"]),
        "enable_validation": bool(s["enable_validation"]),
        "validation_every_n_steps": s["validation_every_n_steps"],
        "save_merged_weights": bool(s["save_merged_weights"]),
        # `ck run` sets resume_from_checkpoint=True after a TIMEOUT: training goes on from the trainer
        # state saved with the last finished epoch (output_dir/.trl/checkpoint-*: adapter, optimizer, schedule)
        "resume_from_checkpoint": False,
        # DDP ranks on this node (torchrun in finetune.slurm): one per GPU, or num_cpu_ranks on the CPU (gloo)
        "processes": int(s["num_gpus"]) if gpu else int(s["num_cpu_ranks"] or 1),
        "device": "cuda" if gpu else "cpu",
        "dtype": "bf16" if gpu else "fp32",
        "gradient_checkpointing": gpu,
        "logger": s["logger"],
        "wandb_project": s["my_wandb_project"],
        "wandb_run_name": s["my_wandb_run_name"] or s["run_name"],
    }


def render_trl_config(setup: dict) -> str:
    from cruijff_kit.templating import render

    s = with_defaults(setup)
    return render("trl_config.yaml.j2", cfg=trl_config(s), setup=s, recipe=RECIPE).rstrip("\n") + "\n"
