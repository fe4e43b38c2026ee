"""The inspect task: its prompt is the training sequence's prefix, and a real eval writes a readable log."""
from __future__ import annotations

import pytest

from cruijff_kit.blueprints.capitalization.generate import generate


@pytest.mark.parametrize("system_prompt", ["", "Capitalize the word {w}."])
def test_eval_prompt_vs_training_prefix(tiny_model, system_prompt):
    """With a system prompt, the chat template's prompt is the training sequence's prefix, token for
    token. Without one, Qwen2.5's real template inserts its default system turn, which torchtune's
    tokenizer does not: the raw template is NOT the training format (the evaluation side must not
    use it as is; that is why the demo sets a system prompt)."""
    from torchtune.data import Message
    from torchtune.models.qwen2_5 import qwen2_5_tokenizer
    from transformers import AutoTokenizer

    from cruijff_kit.tiny_model import QWEN_DEFAULT_SYSTEM_PROMPT

    tt = qwen2_5_tokenizer(path=str(tiny_model / "vocab.json"), merges_file=str(tiny_model / "merges.txt"),
                           special_tokens_path=str(tiny_model / "tokenizer.json"), max_seq_len=None)
    messages = ([Message(role="system", content=system_prompt)] if system_prompt else []) + [
        Message(role="user", content="apple", masked=True), Message(role="assistant", content="Apple")]
    train_tokens, _ = tt.tokenize_messages(messages)

    hf = AutoTokenizer.from_pretrained(tiny_model)
    chat = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [{"role": "user", "content": "apple"}]
    # What inspect's hf provider does: chat template with the generation prompt, then tokenize.
    prompt_ids = hf(hf.apply_chat_template(chat, add_generation_prompt=True, tokenize=False))["input_ids"]
    if system_prompt:
        assert train_tokens[: len(prompt_ids)] == prompt_ids
        assert hf.decode(train_tokens[len(prompt_ids):]).startswith("Apple<|im_end|>")
    else:
        default_turn = hf(f"<|im_start|>system\n{QWEN_DEFAULT_SYSTEM_PROMPT}<|im_end|>\n")["input_ids"]
        assert prompt_ids[: len(default_turn)] == default_turn
        assert train_tokens[: len(prompt_ids) - len(default_turn)] == prompt_ids[len(default_turn):]


@pytest.mark.slow
def test_inspect_eval_on_tiny_model_writes_a_readable_log(tiny_model, tmp_path):
    from inspect_ai import eval as inspect_eval
    from inspect_ai.log import read_eval_log

    from cruijff_kit.blueprints.capitalization.inspect_task import capitalization

    from tests.shared import quick_hf_batching

    quick_hf_batching()  # tests/shared.py: no idle seconds per in-process evaluation
    data = generate(tmp_path / "words.parquet", n=20, seed=0, format="parquet")
    logs = inspect_eval(
        capitalization(data_path=str(data), split="test", system_prompt="", scorer="both"),
        model=f"hf/{tiny_model}", model_args={"do_sample": False}, max_tokens=6, limit=2,
        log_dir=str(tmp_path / "logs"), display="none",
    )
    log = read_eval_log(logs[0].location)
    assert log.status == "success" and log.location.endswith(".eval")
    assert [s.name for s in log.results.scores] == ["exact_case", "includes"]
    assert len(log.samples) == 2 and all(s.target == s.input.capitalize() for s in log.samples)


def test_case_matters_for_both_scorers(tmp_path):
    import asyncio

    from inspect_ai.model import ModelOutput
    from inspect_ai.scorer import Target, includes
    from inspect_ai.solver import TaskState

    from cruijff_kit.blueprints.capitalization.inspect_task import exact_case

    def state(completion):
        return TaskState(model="m", sample_id=0, epoch=0, input="apple", messages=[],
                         output=ModelOutput.from_content("m", completion))

    target = Target("Apple")
    for scorer_fn, completion, expected in [(exact_case(), " Apple\n", "C"), (exact_case(), "apple", "I"),
                                            (includes(ignore_case=False), "apple", "I"),
                                            (includes(ignore_case=False), "It is Apple", "C")]:
        assert asyncio.run(scorer_fn(state(completion), target)).value == expected
