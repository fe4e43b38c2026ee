"""Model registry: any local HF checkpoint of a supported architecture, or a well-known name."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cruijff_kit.errors import CkError
from cruijff_kit.finetune.models import SUPPORTED_ARCHITECTURES, resolve_model

TIKTOKEN_LINE = b"IQ== 0\nIg== 1\n"  # Llama 3's tokenizer.model: "base64 rank" lines


def _checkpoint(tmp_path: Path, name: str, config: dict, *, tokenizer_model: bytes | None = TIKTOKEN_LINE,
                files: tuple[str, ...] = ("model.safetensors",)) -> Path:
    d = tmp_path / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps(config))
    for f in files:
        (d / f).write_bytes(b"")
    if tokenizer_model is not None:
        (d / "original").mkdir()
        (d / "original" / "tokenizer.model").write_bytes(tokenizer_model)
    if config.get("model_type") == "mistral":
        # Mistral repos ship their sentencepiece model at the top; resolve_model checks it exists
        (d / "tokenizer.model").write_bytes(b"")
    return d


LLAMA_3_2_1B = {
    "model_type": "llama", "vocab_size": 128256, "hidden_size": 2048, "intermediate_size": 8192,
    "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
    "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
    "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "tie_word_embeddings": True,
}


def test_tiny_qwen_from_its_config(tiny_model):
    spec = resolve_model(str(tiny_model))
    assert spec.source == "config.json" and spec.family == "qwen2"
    assert spec.model["_component_"] == "torchtune.models.qwen2.lora_qwen2"
    assert spec.model["embed_dim"] == 64 and spec.model["num_kv_heads"] == 2 and spec.model["vocab_size"] == 512
    assert spec.model["tie_word_embeddings"] is True and not spec.lora_on_output_allowed
    assert spec.tokenizer["_component_"] == "torchtune.models.qwen2_5.qwen2_5_tokenizer"
    assert spec.tokenizer["special_tokens_path"] == str(tiny_model / "tokenizer.json")
    assert spec.checkpointer["checkpoint_files"] == ["model.safetensors"]
    assert spec.checkpointer["model_type"] == "QWEN2"


def test_llama_3_2_checkpoint_uses_scaled_rope_and_tied_builder(tmp_path):
    spec = resolve_model(str(_checkpoint(tmp_path, "Llama-3.2-1B-Instruct", LLAMA_3_2_1B)))
    assert spec.model["_component_"] == "torchtune.models.llama3_2.lora_llama3_2"
    assert spec.model["scale_factor"] == 32 and spec.model["rope_base"] == 500000
    assert spec.checkpointer["model_type"] == "LLAMA3_2"
    assert spec.tokenizer == {"_component_": "torchtune.models.llama3.llama3_tokenizer",
                              "path": str(tmp_path / "Llama-3.2-1B-Instruct" / "original" / "tokenizer.model")}


def test_llama_3_1_8b_sharded_checkpoint(tmp_path):
    cfg = {**LLAMA_3_2_1B, "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
           "rope_scaling": {**LLAMA_3_2_1B["rope_scaling"], "factor": 8.0}, "tie_word_embeddings": False}
    d = _checkpoint(tmp_path, "Llama-3.1-8B-Instruct", cfg, files=())
    shards = [f"model-0000{i}-of-00004.safetensors" for i in range(1, 5)]
    (d / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {f"w{i}": s for i, s in enumerate(shards * 2)}}))
    spec = resolve_model(str(d))
    assert spec.model["_component_"] == "torchtune.models.llama3_1.lora_llama3_1"
    assert spec.model["scale_factor"] == 8 and spec.checkpointer["checkpoint_files"] == shards
    assert spec.checkpointer["model_type"] == "LLAMA3" and spec.lora_on_output_allowed


def test_mistral_checkpoint(tmp_path):
    cfg = {"model_type": "mistral", "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 14336,
           "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
           "max_position_embeddings": 32768, "rope_theta": 1000000.0, "sliding_window": None}
    d = _checkpoint(tmp_path, "Mistral-7B-Instruct-v0.2", cfg, tokenizer_model=None,
                    files=("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"))
    spec = resolve_model(str(d))
    assert spec.model["_component_"] == "torchtune.models.mistral.lora_mistral"
    assert spec.tokenizer["_component_"] == "torchtune.models.mistral.mistral_tokenizer"
    assert spec.checkpointer["model_type"] == "MISTRAL" and len(spec.checkpointer["checkpoint_files"]) == 2


@pytest.mark.parametrize("name,family", [("llama", "llama3"), ("mistral", "mistral")])
def test_generic_builders_accept_the_args_we_derive(tmp_path, name, family):
    """Instantiate torchtune's builder with a tiny config of each family: the argument names are right."""
    from omegaconf import OmegaConf
    from torchtune import config as tt_config

    cfg = {"model_type": name, "vocab_size": 256, "hidden_size": 32, "intermediate_size": 64,
           "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2,
           "max_position_embeddings": 64, "rope_theta": 10000.0}
    spec = resolve_model(str(_checkpoint(tmp_path, "m", cfg)))
    assert spec.family == family
    model_cfg = OmegaConf.create({**spec.model, "lora_attn_modules": ["q_proj", "v_proj"], "lora_rank": 4, "lora_alpha": 8})
    model = tt_config.instantiate(model_cfg)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_unsupported_architecture_names_the_supported_ones(tmp_path):
    d = _checkpoint(tmp_path, "gemma", {"model_type": "gemma2", "vocab_size": 1})
    with pytest.raises(CkError) as e:
        resolve_model(str(d))
    assert e.value.field == "model_type" and "gemma2" in str(e.value)
    assert all(a in e.value.hint for a in SUPPORTED_ARCHITECTURES)


def test_well_known_name_without_config_uses_named_builder(tmp_path):
    spec = resolve_model(str(tmp_path / "not-downloaded-yet"), "Llama-3.2-1B-Instruct")
    assert spec.source == "named builder"
    assert spec.model == {"_component_": "torchtune.models.llama3_2.lora_llama3_2_1b"}
    assert spec.checkpointer["checkpoint_files"] == ["model.safetensors"]


def test_unknown_name_without_config_is_an_error(tmp_path):
    with pytest.raises(CkError, match="not a well-known model"):
        resolve_model(str(tmp_path / "nothing"))


def test_directory_without_weights_is_an_error(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({**LLAMA_3_2_1B}))
    with pytest.raises(CkError, match="no model weights"):
        resolve_model(str(d))


def test_epoch_output_dir_ignores_adapter_files(tiny_model, tmp_path):
    """An epoch_N/ written by torchtune is itself a checkpoint we can fine-tune further."""
    import shutil

    d = tmp_path / "epoch_0"
    shutil.copytree(tiny_model, d)
    (d / "adapter_model.safetensors").write_bytes(b"")
    assert resolve_model(str(d)).checkpointer["checkpoint_files"] == ["model.safetensors"]
