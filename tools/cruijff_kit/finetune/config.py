"""setup_finetune.yaml (a dict) -> finetune.yaml, a config torchtune 0.6.1 accepts as is.

The values are gathered here into one nested dict (the config torchtune will see), the
experiment's `extra_overrides` (dotted keys) are applied to it, and templates/finetune.yaml.j2
writes it out with its comments. Pure Python: imported by the CLI at start-up.
"""
from __future__ import annotations

from typing import Any

from cruijff_kit.errors import CkError
from cruijff_kit.finetune.models import resolve_model
from cruijff_kit.finetune.prompt_format import check_system_prompt
from cruijff_kit.settings import BY_KEY, SETUP_REQUIRED, setup_file_defaults
from cruijff_kit.state import layout

REQUIRED_FIELDS = SETUP_REQUIRED
DEFAULTS: dict[str, Any] = setup_file_defaults()  # the settings schema's, for keys a setup file omits

DATASET_FORMATS = ("json", "parquet")
LOGGERS = ("disk", "wandb")

SINGLE_DEVICE_RECIPE = "cruijff_kit.finetune.recipes.lora_single_device"
DISTRIBUTED_RECIPE = "cruijff_kit.finetune.recipes.lora_distributed"

SETUP_FILE = layout.SETUP  # where the values came from, for error messages


class ResolvedSetup(dict):
    """A setup that with_defaults() filled and checked (the scaffold renders several files from one)."""


def with_defaults(setup: dict) -> dict:
    """The setup with every optional field filled and the values checked (bounds from the schema).
    Resolved once: a resolved setup passed to another renderer is returned as it is."""
    if isinstance(setup, ResolvedSetup):
        return setup
    missing = [k for k in REQUIRED_FIELDS if setup.get(k) in (None, "")]
    if missing:
        raise CkError(
            "missing required field(s): " + ", ".join(missing),
            file=SETUP_FILE,
            field=missing[0],
            hint="re-run the scaffold, or add the field to setup_finetune.yaml",
        )
    s = {**DEFAULTS, **{k: v for k, v in setup.items() if v is not None or k not in DEFAULTS}}
    s["extra_overrides"] = s.get("extra_overrides") or {}
    _check_choice(s, "dataset_format", DATASET_FORMATS)
    _check_choice(s, "logger", LOGGERS)
    for key, value in s.items():
        setting = BY_KEY.get(key)
        if setting is None or not setting.per_run or value is None:
            continue
        problem = setting.problem(list(value) if isinstance(value, tuple) else value)
        if problem:
            raise CkError(problem, file=SETUP_FILE, field=key)
    if s["num_nodes"] > 1 and s["num_gpus"] == 0:
        raise CkError("multi-node training needs num_gpus >= 1 per node", file=SETUP_FILE, field="num_nodes")
    if s["num_gpus"] > 0 and s["num_cpu_ranks"] > 1:
        raise CkError("num_cpu_ranks is for CPU training (num_gpus: 0); GPU runs start one rank per GPU",
                      file=SETUP_FILE, field="num_cpu_ranks")
    if "${" in str(s["system_prompt"]):
        # torchtune resolves its config more than once, so even an escaped "\${" comes back as an interpolation.
        raise CkError("the system prompt may not contain '${' (torchtune's config reads it as an interpolation)",
                      file=SETUP_FILE, field="system_prompt")
    if s["logger"] == "wandb" and not s["my_wandb_project"]:
        raise CkError("logger is wandb but no project is set", file=SETUP_FILE, field="my_wandb_project",
                      hint="set my_wandb_project in claude.local.md, or use the disk logger")
    if not isinstance(s["extra_overrides"], dict):
        raise CkError("must be a mapping of torchtune key: value", file=SETUP_FILE, field="extra_overrides")
    return ResolvedSetup(s)


def _check_choice(s: dict, key: str, choices: tuple[str, ...]) -> None:
    if s[key] not in choices:
        raise CkError(f"{str(s[key])[:40]!r} is not one of: {', '.join(choices)}", file=SETUP_FILE, field=key)


def ranks_per_node(setup: dict) -> int:
    s = {**DEFAULTS, **setup}
    return int(s["num_gpus"] or 0) or int(s["num_cpu_ranks"] or 1)


def is_distributed(setup: dict) -> bool:
    s = {**DEFAULTS, **setup}
    return ranks_per_node(s) * int(s["num_nodes"] or 1) > 1


def recipe_module(setup: dict) -> str:
    return DISTRIBUTED_RECIPE if is_distributed(setup) else SINGLE_DEVICE_RECIPE


def dataset_component(s: dict, split: str = "train") -> dict[str, Any]:
    """torchtune's instruct_dataset over one split (train; validation for the validation loss).

    json:    one file {"train": [...], "validation": [...], "test": [...]}; `field: <split>` picks the split.
    parquet: a directory holding one file per split: train.parquet, validation.parquet, test.parquet.
    """
    path = str(s["dataset"])
    ds: dict[str, Any] = {"_component_": "torchtune.datasets.instruct_dataset"}
    if s["dataset_format"] == "json":
        ds.update(source="json", data_files=path, field=split)
    else:
        ds.update(source="parquet", data_files=path.rstrip("/") + f"/{split}.parquet")
    ds.update(split="train", column_map={"input": "input", "output": "output"},
              train_on_input=bool(s["train_on_input"]), packed=False)
    if s["system_prompt"]:
        ds["new_system_prompt"] = str(s["system_prompt"])
    return ds


def metric_logger_component(s: dict) -> dict[str, Any]:
    if s["logger"] == "wandb":
        return {
            "_component_": "cruijff_kit.finetune.metric_logging.DiskAndWandBLogger",
            "log_dir": "${output_dir}/logs",
            "project": s["my_wandb_project"],
            "name": s["my_wandb_run_name"] or s["run_name"],
            "group": s["experiment_name"] or None,
        }
    return {"_component_": "torchtune.training.metric_logging.DiskLogger", "log_dir": "${output_dir}/logs"}


def finetune_config(setup: dict) -> dict[str, Any]:
    """The config torchtune will see, as a nested dict in the file's order, overrides applied."""
    s = with_defaults(setup)
    spec = resolve_model(str(s["model_checkpoint"]), s["model_name"])
    check_system_prompt(spec.prompt_format, spec.family, str(s["system_prompt"] or ""), where=SETUP_FILE)
    gpu = s["num_gpus"] > 0
    lora_attn = list(s["lora_attn_modules"])
    model = {
        "_component_": spec.model["_component_"],
        "lora_attn_modules": lora_attn,
        "apply_lora_to_mlp": bool(s["apply_lora_to_mlp"]),
        "apply_lora_to_output": False if spec.tied_embeddings else bool(s.get("apply_lora_to_output", False)),
        "lora_rank": s["lora_rank"],
        "lora_alpha": s["lora_alpha"],
        "lora_dropout": float(s["lora_dropout"]),
        **{k: v for k, v in spec.model.items() if k != "_component_"},
    }
    cfg: dict[str, Any] = {
        "output_dir": str(s["output_dir"]),
        "model": model,
        # max_seq_len must stay null: with an int, torchtune 0.6.1 masks the final EOS out of the
        # loss (torchtune#2792) and the model never learns to stop.
        "tokenizer": {**spec.tokenizer, "max_seq_len": None},
        "checkpointer": {**spec.checkpointer, "recipe_checkpoint": None, "output_dir": "${output_dir}"},
        "resume_from_checkpoint": False,
        "save_adapter_weights_only": not bool(s["save_merged_weights"]),
        "dataset": dataset_component(s),
        "seed": s["seed"],
        "shuffle": True,
        "batch_size": s["batch_size"],
        "epochs": s["epochs"],
        "max_steps_per_epoch": s["max_steps_per_epoch"],
        "gradient_accumulation_steps": s["gradient_accumulation_steps"],
        "optimizer": {"_component_": "torch.optim.AdamW", "fused": gpu,
                      "weight_decay": float(s["weight_decay"]), "lr": float(s["learning_rate"])},
        "lr_scheduler": {"_component_": "torchtune.training.lr_schedulers.get_cosine_schedule_with_warmup",
                         "num_warmup_steps": int(s["lr_warmup_steps"])},
        "loss": {"_component_": "torchtune.modules.loss.CEWithChunkedOutputLoss"},
        "clip_grad_norm": None,
        "compile": False,
        "device": "cuda" if gpu else "cpu",
        "dtype": "bf16" if gpu else "fp32",
        "enable_activation_checkpointing": gpu,
        "enable_activation_offloading": False,
        "metric_logger": metric_logger_component(s),
        "log_every_n_steps": 1,
        "log_peak_memory_stats": gpu,
        "profiler": {"_component_": "torchtune.training.setup_torch_profiler", "enabled": False},
    }
    if is_distributed(s):
        cfg["fsdp_cpu_offload"] = False  # True needs pin_memory, i.e. an accelerator
    if s["enable_validation"]:
        # Read by our recipes' validation loop (finetune/recipes/validation.py); same names as later torchtune.
        cfg["dataset_val"] = dataset_component(s, "validation")
        cfg["run_val_every_n_steps"] = s["validation_every_n_steps"]
        cfg["batch_size_val"] = s["batch_size"]
    for dotted, value in s["extra_overrides"].items():
        _set_dotted(cfg, str(dotted), value)
    return cfg


def _set_dotted(cfg: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = cfg
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise CkError(f"{'.'.join(parts[: i + 1])} is not a section, so {dotted} cannot be set",
                          file=SETUP_FILE, field=f"extra_overrides.{dotted}")
        node = child
    node[parts[-1]] = value


def render_finetune_yaml(setup: dict) -> str:
    from cruijff_kit.templating import render

    s = with_defaults(setup)
    cfg = finetune_config(s)
    return render(
        "finetune.yaml.j2",
        cfg=cfg,
        setup=s,
        recipe=recipe_module(s),
        overrides=s["extra_overrides"],
    )
