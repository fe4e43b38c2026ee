"""The shrunk checkpoints carry real tokenizer formats: torchtune's tokenizer (what training uses)
and the Hugging Face tokenizer (what transformers / inspect use) give the same ids."""
from __future__ import annotations

import json

import pytest

from tests.families.names import FAMILIES

pytestmark = pytest.mark.slow  # real training, evaluation or training processes: `make test`, not test-fast

TEXTS = ("Capitalize the word: apple", "the quick brown fox\n\njumps  over 12345 dogs! Ünïcødé 漢字 한국", "Apple")


def _torchtune_tokenizer(name, d):
    if name.startswith("Llama"):
        from torchtune.models.llama3 import llama3_tokenizer

        return llama3_tokenizer(str(d / "original" / "tokenizer.model"))
    if name.startswith("Qwen"):
        from torchtune.models.qwen2_5 import qwen2_5_tokenizer

        return qwen2_5_tokenizer(str(d / "vocab.json"), str(d / "merges.txt"), special_tokens_path=str(d / "tokenizer.json"))
    from torchtune.models.mistral import mistral_tokenizer

    return mistral_tokenizer(str(d / "tokenizer.model"))


@pytest.mark.parametrize("name", FAMILIES)
def test_torchtune_and_hf_tokenizers_agree(name, family_model):
    from transformers import AutoTokenizer

    d = family_model(name)
    hf = AutoTokenizer.from_pretrained(d)
    tt = _torchtune_tokenizer(name, d)
    for text in TEXTS:
        assert hf(text, add_special_tokens=False)["input_ids"] == tt.encode(text, add_bos=False, add_eos=False), text
    cfg = json.loads((d / "config.json").read_text())
    assert len(hf) <= cfg["vocab_size"]


@pytest.mark.parametrize("name,ids", [
    ("Llama-3.2-1B-Instruct", {"<|begin_of_text|>": 128000, "<|start_header_id|>": 128006, "<|eot_id|>": 128009}),
    ("Llama-3.1-8B-Instruct", {"<|end_of_text|>": 128001, "<|eom_id|>": 128008, "<|reserved_special_token_247|>": 128255}),
    ("Qwen2.5-0.5B-Instruct", {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645, "<|file_sep|>": 151664}),
    ("Qwen2.5-7B-Instruct", {"<|im_end|>": 151645, "<tool_call>": 151657}),
    ("Mistral-7B-Instruct-v0.3", {"<s>": 1, "</s>": 2, "[INST]": 3, "[/INST]": 4, "[control_768]": 770}),
])
def test_special_token_ids_are_the_real_ones(name, ids, family_model):
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(family_model(name))
    assert {t: hf.convert_tokens_to_ids(t) for t in ids} == ids


def test_layouts_are_the_hub_ones(family_model):
    d = family_model("Llama-3.1-8B-Instruct")
    index = json.loads((d / "model.safetensors.index.json").read_text())
    assert sorted(set(index["weight_map"].values())) == [f"model-0000{i}-of-00004.safetensors" for i in range(1, 5)]
    assert "lm_head.weight" in index["weight_map"]
    assert (d / "original" / "tokenizer.model").is_file() and not (d / "tokenizer.model").exists()
    q = family_model("Qwen2.5-0.5B-Instruct")
    assert (q / "model.safetensors").is_file() and json.loads((q / "config.json").read_text())["tie_word_embeddings"]
    m = family_model("Mistral-7B-Instruct-v0.3")
    assert json.loads((m / "model.safetensors.index.json").read_text())["weight_map"]
