"""Layouts are checked before anything is queued: Llama without original/, login-node names,
Mistral v0.3, missing tokenizer files, system prompts a format cannot render."""
from __future__ import annotations

import json

import pytest

from tests.families.evalcheck import assert_prompt_is_training_prefix, eval_inputs, setup_for, training_sequences
from tests.families.evalcheck import fine_tune
from cruijff_kit.errors import CkError
from cruijff_kit.finetune.config import finetune_config
from cruijff_kit.finetune.models import layout_problems, resolve_model

pytestmark = pytest.mark.slow  # real training, evaluation or training processes: `make test`, not test-fast


def test_llama_without_original_trains_and_evaluates_from_tokenizer_json(model_root, words, tmp_path):
    from transformers import AutoTokenizer

    from tests.families.checkpoints import make_llama32_1b_instruct

    base = make_llama32_1b_instruct(model_root / "no-original" / "Llama-3.2-1B-Instruct", with_original=False)
    assert not (base / "original").exists()
    spec = resolve_model(str(base))
    assert spec.tokenizer == {"_component_": "cruijff_kit.finetune.tokenizers.llama3_hf_tokenizer",
                              "path": str(base / "tokenizer.json")}
    assert layout_problems(base) == []
    setup = {**setup_for(base, words, tmp_path / "out"), "max_steps_per_epoch": 2}
    cfg = fine_tune(setup, tmp_path / "run")
    rows = json.loads(words.read_text())["test"]
    sequences = training_sequences(cfg, rows)
    seen, log = eval_inputs(tmp_path / "out" / "epoch_0", "llama3", words, "", tmp_path / "s", tmp_path / "l")
    tok = AutoTokenizer.from_pretrained(base)
    assert log.status == "success"
    for row in rows:
        (prompt,) = [p for p in seen if sequences[row["input"]][: len(p)] == p]
        assert_prompt_is_training_prefix(prompt, sequences[row["input"]], row["output"], tok)


def test_llama_tokenizer_json_gives_torchtunes_tiktoken_ids(family_model):
    from torchtune.data import Message
    from torchtune.models.llama3 import llama3_tokenizer

    from cruijff_kit.finetune.tokenizers import llama3_hf_tokenizer

    d = family_model("Llama-3.1-8B-Instruct")
    msgs = [Message("system", "Be brief.", masked=True), Message("user", "Capitalize: pear", masked=True),
            Message("assistant", "Pear")]
    assert llama3_hf_tokenizer(str(d / "tokenizer.json")).tokenize_messages(msgs) == \
        llama3_tokenizer(str(d / "original" / "tokenizer.model")).tokenize_messages(msgs)


def test_login_node_names_use_the_hub_layouts(tmp_path):
    llama = resolve_model(str(tmp_path / "absent" / "Llama-3.1-8B-Instruct"))
    assert llama.tokenizer["path"].endswith("/Llama-3.1-8B-Instruct/tokenizer.json")
    assert llama.checkpointer["checkpoint_files"] == [f"model-0000{i}-of-00004.safetensors" for i in range(1, 5)]
    assert llama.prompt_format.name == "llama3"
    mistral = resolve_model(str(tmp_path / "absent" / "Mistral-7B-Instruct-v0.3"))
    assert mistral.tokenizer["_component_"] == "cruijff_kit.finetune.tokenizers.mistral_v3_tokenizer"
    assert mistral.model["vocab_size"] == 32768 and mistral.prompt_format.name == "mistral_v3"
    assert resolve_model(str(tmp_path / "absent" / "Qwen2.5-7B-Instruct")).prompt_format.name == "chatml"
    # Llama 3.3 (torchtune's builder is 3.1-70B's) trains and evaluates in the Llama-3 format too
    l33 = resolve_model(str(tmp_path / "absent" / "Llama-3.3-70B-Instruct"))
    assert l33.model["_component_"] == "torchtune.models.llama3_3.lora_llama3_3_70b"
    assert l33.prompt_format.name == "llama3" and len(l33.checkpointer["checkpoint_files"]) == 30
    from torchtune.config._utils import _get_component_from_path
    assert _get_component_from_path(l33.model["_component_"]) is not None


def test_missing_tokenizer_file_is_named_at_scaffold(family_model, tmp_path):
    src = family_model("Qwen2.5-0.5B-Instruct")
    d = tmp_path / "Qwen2.5-0.5B-Instruct"
    d.mkdir()
    for f in src.iterdir():
        if f.name != "merges.txt":
            (d / f.name).symlink_to(f)
    with pytest.raises(CkError) as err:
        resolve_model(str(d))
    assert "merges.txt" in str(err.value)
    assert any("merges.txt" in p for p in layout_problems(d))


def test_system_prompt_torchtunes_mistral_template_cannot_render_is_refused(family_model, words, tmp_path):
    # a Mistral v0.1/v0.2-style checkpoint: 32000 tokens, [INST] is text
    d = tmp_path / "Mistral-7B-Instruct-v0.2"
    d.mkdir()
    cfg = json.loads((family_model("Mistral-7B-Instruct-v0.3") / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "vocab_size": 32000}))
    (d / "tokenizer.model").write_bytes(b"")
    (d / "model.safetensors").write_bytes(b"")
    with pytest.raises(CkError) as err:
        finetune_config(setup_for(d, words, tmp_path / "o", "Be brief."))
    assert err.value.field == "system_prompt"
    finetune_config(setup_for(d, words, tmp_path / "o", ""))  # without one it is accepted
    # Mistral v0.3 renders it (into the last user turn)
    finetune_config(setup_for(family_model("Mistral-7B-Instruct-v0.3"), words, tmp_path / "o", "Be brief."))
