"""finetune.yaml: rendered from setup_finetune.yaml and accepted by torchtune's own config system."""
from __future__ import annotations

import math

import pytest
import yaml
from hypothesis import assume, given, strategies as st
from omegaconf import OmegaConf

from cruijff_kit.errors import CkError
from cruijff_kit.finetune.config import recipe_module, render_finetune_yaml
from cruijff_kit.util.yaml_text import yaml_value


def _load(setup: dict):
    return OmegaConf.create(render_finetune_yaml(setup))


def test_torchtune_instantiates_model_tokenizer_and_dataset(setup_dict):
    from torchtune import config as tt_config

    cfg = _load(setup_dict)
    assert cfg.tokenizer.max_seq_len is None  # torchtune#2792: an int masks the final EOS out of the loss
    assert cfg.checkpointer.output_dir == setup_dict["output_dir"]
    assert cfg.metric_logger.log_dir == setup_dict["output_dir"] + "/logs"
    model = tt_config.instantiate(cfg.model)
    assert model.tok_embeddings.weight.shape == (512, 64)
    tokenizer = tt_config.instantiate(cfg.tokenizer)
    dataset = tt_config.instantiate(cfg.dataset, tokenizer)
    assert len(dataset) == 16  # the "train" field only
    sample = dataset[0]
    eos = tokenizer.eos_id
    # EOS is the last token AND is trained on (label not masked).
    assert sample["tokens"][-1] == eos and sample["labels"][-1] == eos


def test_values_from_setup(setup_dict):
    cfg = _load({**setup_dict, "lora_rank": 64, "lora_alpha": 128, "learning_rate": 5e-5, "epochs": 3,
                 "batch_size": 2, "max_steps_per_epoch": None})
    assert (cfg.model.lora_rank, cfg.model.lora_alpha, cfg.optimizer.lr) == (64, 128, 5e-5)
    assert (cfg.epochs, cfg.batch_size, cfg.max_steps_per_epoch) == (3, 2, None)
    assert cfg.model.apply_lora_to_output is False  # tied embeddings
    assert cfg.device == "cpu" and cfg.dtype == "fp32" and cfg.optimizer.fused is False
    assert "new_system_prompt" not in cfg.dataset
    assert yaml.safe_load(render_finetune_yaml(setup_dict))["optimizer"]["lr"] == pytest.approx(3e-3)


def test_system_prompt_reaches_the_training_sequence(setup_dict):
    from torchtune import config as tt_config

    prompt = 'Capitalize the word. Say "only" the word: {w} $w.'
    cfg = _load({**setup_dict, "system_prompt": prompt})
    assert cfg.dataset.new_system_prompt == prompt
    tokenizer = tt_config.instantiate(cfg.tokenizer)
    text = tokenizer.decode(tt_config.instantiate(cfg.dataset, tokenizer)[0]["tokens"], skip_special_tokens=False)
    assert text.startswith(f"<|im_start|>system\n{prompt}<|im_end|>")


def test_parquet_directory_one_file_per_split(setup_dict, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    from torchtune import config as tt_config

    d = tmp_path / "words.parquet"
    d.mkdir()
    for split, words in {"train": ["apple", "pear", "plum"], "validation": ["fig"], "test": ["kiwi"]}.items():
        pq.write_table(pa.table({"input": words, "output": [w.capitalize() for w in words]}), d / f"{split}.parquet")
    cfg = _load({**setup_dict, "dataset": str(d), "dataset_format": "parquet"})
    assert cfg.dataset.source == "parquet" and cfg.dataset.data_files == f"{d}/train.parquet"
    assert len(tt_config.instantiate(cfg.dataset, tt_config.instantiate(cfg.tokenizer))) == 3


def test_wandb_keeps_the_disk_log(setup_dict, tmp_path, monkeypatch):
    from torchtune import config as tt_config

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = _load({**setup_dict, "logger": "wandb", "my_wandb_project": "cap", "output_dir": str(tmp_path / "o")})
    assert cfg.metric_logger._component_ == "cruijff_kit.finetune.metric_logging.DiskAndWandBLogger"
    assert (cfg.metric_logger.project, cfg.metric_logger.name) == ("cap", "rank8_lr1e-5")
    logger = tt_config.instantiate(cfg.metric_logger)
    logger.log_dict({"loss": 1.5}, step=1)
    logger.close()
    assert "loss:1.5" in next((tmp_path / "o" / "logs").glob("log_*.txt")).read_text().replace(" ", "")
    assert list((tmp_path / "o" / "logs" / "wandb").glob("offline-run-*"))
    assert "api_key" not in render_finetune_yaml({**setup_dict, "logger": "wandb", "my_wandb_project": "cap"})


def test_distributed_recipe_by_gpu_and_node_count(setup_dict):
    assert recipe_module(setup_dict).endswith("lora_single_device")
    assert recipe_module({**setup_dict, "num_gpus": 1}).endswith("lora_single_device")
    assert recipe_module({**setup_dict, "num_gpus": 4}).endswith("lora_distributed")
    cfg = _load({**setup_dict, "num_gpus": 2, "num_nodes": 2})
    assert cfg.device == "cuda" and cfg.dtype == "bf16" and cfg.fsdp_cpu_offload is False


def test_extra_overrides_replace_and_add_keys(setup_dict):
    cfg = _load({**setup_dict, "extra_overrides": {"optimizer.weight_decay": 0.0, "clip_grad_norm": 1.0,
                                                    "dataset.packed": True, "custom_sharded_layers": ["a"]}})
    assert cfg.optimizer.weight_decay == 0.0 and cfg.clip_grad_norm == 1.0 and cfg.dataset.packed is True
    assert list(cfg.custom_sharded_layers) == ["a"]


@pytest.mark.parametrize(
    "change,field",
    [
        ({"enable_validation": "yes"}, "enable_validation"),
        ({"enable_validation": True, "validation_every_n_steps": 0}, "validation_every_n_steps"),
        ({"dataset_format": "csv"}, "dataset_format"),
        ({"lora_rank": "eight"}, "lora_rank"),
        ({"learning_rate": "fast"}, "learning_rate"),
        ({"logger": "wandb", "my_wandb_project": None}, "my_wandb_project"),
        ({"run_name": None}, "run_name"),
        ({"num_nodes": 2, "num_gpus": 0}, "num_nodes"),
        ({"extra_overrides": {"seed.x": 1}}, "extra_overrides.seed.x"),
        ({"system_prompt": "Say ${word}"}, "system_prompt"),
    ],
)
def test_bad_setup_is_a_ck_error_naming_the_field(setup_dict, change, field):
    with pytest.raises(CkError) as e:
        render_finetune_yaml({**setup_dict, **change})
    assert e.value.field == field and e.value.file == "setup_finetune.yaml"


def test_validation_reads_the_validation_split(setup_dict, tmp_path):
    """Validation during training was refused before our recipes had a validation loop."""
    assert "dataset_val" not in _load(setup_dict)
    cfg = _load({**setup_dict, "enable_validation": True, "validation_every_n_steps": 5})
    assert cfg.dataset_val.field == "validation" and cfg.dataset_val.data_files == setup_dict["dataset"]
    assert cfg.dataset.field == "train" and cfg.run_val_every_n_steps == 5 and cfg.batch_size_val == cfg.batch_size
    parquet = _load({**setup_dict, "enable_validation": True, "dataset_format": "parquet", "dataset": str(tmp_path)})
    assert parquet.dataset_val.data_files == f"{tmp_path}/validation.parquet" and parquet.run_val_every_n_steps is None


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
)
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(min_size=1, max_size=5), inner, max_size=3), max_leaves=8)


@given(_values)
def test_yaml_value_round_trips_through_pyyaml_and_omegaconf(value):
    text = yaml_value(value)
    # OmegaConf gives "${...}" and "???" meanings of its own; config.py escapes user text for it.
    assume("${" not in repr(value) and "???" not in repr(value))
    assert yaml.safe_load(f"k: {text}")["k"] == value or (isinstance(value, float) and math.isnan(value))
    assert OmegaConf.to_container(OmegaConf.create(f"k: {text}"))["k"] == value
