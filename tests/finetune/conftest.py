"""Fixtures for the torchtune side: one tiny model per session, a small capitalization dataset,
and a complete setup_finetune.yaml dict as the scaffold would write it."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest


WORDS = (
    "apple banana cherry orange grape lemon melon peach pear plum house garden "
    "river mountain forest ocean island desert valley city"
).split()


@pytest.fixture(scope="session")
def words_json(tmp_path_factory) -> Path:
    rows = [{"input": w, "output": w.capitalize()} for w in WORDS]
    path = tmp_path_factory.mktemp("data") / "words.json"
    path.write_text(json.dumps({"train": rows[:16], "validation": rows[16:18], "test": rows[18:]}))
    return path


@pytest.fixture
def setup_dict(tiny_model, words_json, tmp_path) -> dict:
    return {
        "experiment_name": "cap_demo",
        "run_name": "rank8_lr1e-5",
        "model_name": "tiny-qwen",
        "model_checkpoint": str(tiny_model),
        "dataset": str(words_json),
        "dataset_format": "json",
        "lora_rank": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.0,
        "learning_rate": 3.0e-3,
        "batch_size": 4,
        "gradient_accumulation_steps": 1,
        "epochs": 1,
        "max_steps_per_epoch": 2,
        "num_gpus": 0,
        "num_nodes": 1,
        "system_prompt": "",
        "enable_validation": False,
        "seed": 1234,
        "output_dir": str(tmp_path / "outputs" / "rank8_lr1e-5"),
        "logger": "disk",
        "my_wandb_project": None,
        "my_wandb_run_name": "rank8_lr1e-5",
        "environment": {"kind": "venv", "path": str(Path(sys.executable).parent.parent)},
        "slurm": {"job_name": "rank8_lr1e-5", "account": None, "partition": None, "constraint": None,
                  "time": "01:00:00", "mem": "16G", "cpus": 4, "gpus": 0, "nodes": 1, "modules": [],
                  "output": "slurm-%j.out"},
        "extra_overrides": {},
        "lr_warmup_steps": 1,
        # these tests check the recipe's merged save; adapter-only (the default) is tested in tests/families
        "save_merged_weights": True,
    }
