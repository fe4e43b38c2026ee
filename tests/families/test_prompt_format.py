"""One prompt format per run: what the evaluation feeds the base model (the control) is, token
for token, the training sequence's prefix before the answer, with and without a system prompt."""
from __future__ import annotations

import json

import pytest

from tests.families.names import FAMILIES
from tests.families.evalcheck import SYSTEM_PROMPT, assert_prompt_is_training_prefix, eval_inputs, setup_for, training_sequences
from cruijff_kit.finetune.config import finetune_config
from cruijff_kit.finetune.models import resolve_model

pytestmark = pytest.mark.slow  # real training, evaluation or training processes: `make test`, not test-fast


@pytest.mark.parametrize("system_prompt", ["", SYSTEM_PROMPT], ids=["no-system", "system"])
@pytest.mark.parametrize("name", FAMILIES)
def test_control_eval_feeds_the_training_prefix(name, system_prompt, family_model, words, tmp_path):
    from transformers import AutoTokenizer

    d = family_model(name)
    cfg = finetune_config(setup_for(d, words, tmp_path / "out", system_prompt))
    rows = json.loads(words.read_text())["test"]
    sequences = training_sequences(cfg, rows)
    fmt = resolve_model(str(d)).prompt_format
    seen, log = eval_inputs(d, fmt.name, words, system_prompt, tmp_path / "scratch", tmp_path / "logs")
    assert log.status == "success" and len(seen) == len(rows)
    hf_tok = AutoTokenizer.from_pretrained(d)
    by_input = {s.input: s for s in log.samples}
    # match every captured prompt to its row: the prompt must be that row's training prefix
    for row in rows:
        prompts = [p for p in seen if sequences[row["input"]][: len(p)] == p]
        assert len(prompts) == 1, f"{name}: no evaluation prompt is the training prefix of {row['input']!r}"
        assert_prompt_is_training_prefix(prompts[0], sequences[row["input"]], row["output"], hf_tok)
    assert set(by_input) == {r["input"] for r in rows}
    assert log.eval.metadata["ck_prompt_format"] == fmt.name
    assert log.eval.metadata["ck_decoding"] == "greedy"
    # the base model's directory was not touched
    assert json.loads((d / "tokenizer_config.json").read_text())["chat_template"] != fmt.chat_template
