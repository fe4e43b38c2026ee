"""Fine-tuned checkpoints: a 1-epoch LoRA fine-tune per family, then the checkpoint carries its
format and its evaluation feeds, for every sample, the training sequence's prefix before the answer."""
from __future__ import annotations

import json

import pytest

from tests.families.names import FAMILIES
from tests.families.evalcheck import SYSTEM_PROMPT, fine_tune, assert_prompt_is_training_prefix, eval_inputs, setup_for, training_sequences
from cruijff_kit.finetune.prompt_format import read_checkpoint_record

pytestmark = pytest.mark.slow  # real training, evaluation or training processes: `make test`, not test-fast

# one fine-tune per family; the system prompt alternates so both paths train and evaluate
SYSTEM = {"Llama-3.2-1B-Instruct": SYSTEM_PROMPT, "Llama-3.1-8B-Instruct": "", "Qwen2.5-0.5B-Instruct": "",
          "Qwen2.5-7B-Instruct": SYSTEM_PROMPT, "Mistral-7B-Instruct-v0.3": SYSTEM_PROMPT}


@pytest.mark.parametrize("name", FAMILIES)
def test_finetuned_eval_feeds_the_training_prefix(name, family_model, words, tmp_path):
    from transformers import AutoTokenizer

    base = family_model(name)
    system = SYSTEM[name]
    setup = {**setup_for(base, words, tmp_path / "out", system), "max_steps_per_epoch": 2}
    cfg = fine_tune(setup, tmp_path / "run")
    epoch = tmp_path / "out" / "epoch_0"
    record = read_checkpoint_record(epoch)
    fmt_name = record["prompt_format"]
    assert record["base_model"] == str(base.resolve())
    # the checkpoint carries its training format: plain transformers renders it with no flags
    tok = AutoTokenizer.from_pretrained(epoch)
    assert tok.chat_template == record["chat_template"]

    rows = json.loads(words.read_text())["test"]
    sequences = training_sequences(cfg, rows)
    seen, log = eval_inputs(epoch, fmt_name, words, system, tmp_path / "scratch", tmp_path / "logs")
    assert log.status == "success" and len(seen) == len(rows)
    for row in rows:
        prompts = [p for p in seen if sequences[row["input"]][: len(p)] == p]
        assert len(prompts) == 1, f"{name}: no evaluation prompt is the training prefix of {row['input']!r}"
        assert_prompt_is_training_prefix(prompts[0], sequences[row["input"]], row["output"], tok)
    # greedy: the model's sampling settings were replaced, and the log says which
    if name.startswith("Qwen"):
        assert "repetition_penalty=1.1" in log.eval.metadata["ck_generation_config_replaced"]
