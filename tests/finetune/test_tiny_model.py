"""The tiny model: byte-for-byte reproducible, Qwen2.5's template and special tokens, loadable by
transformers, one token per demo word, and (copy=True) a base that copies but never capitalises."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # real training, evaluation or training processes: `make test`, not test-fast


def test_byte_for_byte_reproducible_and_cli(tmp_path):
    from cruijff_kit.tiny_model import make_tiny_model

    a = make_tiny_model(tmp_path / "a", seed=3, kv_heads=4, copy=True)
    subprocess.run([sys.executable, "-m", "cruijff_kit.tiny_model", str(tmp_path / "b"), "--seed", "3", "--kv-heads", "4",
                    "--copy"], check=True, capture_output=True)
    names = sorted(p.name for p in a.iterdir())
    assert names == ["config.json", "generation_config.json", "merges.txt", "model.safetensors", "tokenizer.json",
                     "tokenizer_config.json", "vocab.json"]
    assert all((a / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in names)
    c = make_tiny_model(tmp_path / "c", seed=4, kv_heads=4, copy=True)
    assert (c / "model.safetensors").read_bytes() != (a / "model.safetensors").read_bytes()


def test_qwen25_chat_template_and_special_tokens(tiny_model):
    from transformers import AutoTokenizer

    from cruijff_kit.tiny_model import QWEN_DEFAULT_SYSTEM_PROMPT, SPECIAL_TOKENS

    tok = AutoTokenizer.from_pretrained(tiny_model)
    cfg = json.loads((tiny_model / "tokenizer_config.json").read_text())
    assert cfg["eos_token"] == "<|im_end|>" and cfg["pad_token"] == "<|endoftext|>" and cfg["bos_token"] is None
    added = json.loads((tiny_model / "tokenizer.json").read_text())["added_tokens"]
    assert [t["content"] for t in added] == list(SPECIAL_TOKENS) and all(t["special"] for t in added)
    # Qwen2.5-Instruct's template: its default system prompt when none is given, ChatML turns.
    no_system = tok.apply_chat_template([{"role": "user", "content": "apple"}], add_generation_prompt=True, tokenize=False)
    assert no_system == (f"<|im_start|>system\n{QWEN_DEFAULT_SYSTEM_PROMPT}<|im_end|>\n"
                         "<|im_start|>user\napple<|im_end|>\n<|im_start|>assistant\n")
    ids = tok(no_system)["input_ids"]
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>") and ids.count(tok.convert_tokens_to_ids("<|im_end|>")) == 2
    tools = tok.apply_chat_template([{"role": "user", "content": "hi"}], tools=[{"type": "function", "function": {
        "name": "f", "description": "d", "parameters": {"type": "object", "properties": {}}}}], tokenize=False)
    assert "# Tools" in tools and "<tool_call>" in tools


def test_transformers_loads_it_and_demo_vocab_has_single_token_words(tiny_model, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cruijff_kit.blueprints.capitalization.generate import SHIPPED_WORDS, read_words
    from cruijff_kit.tiny_model import make_tiny_model

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert model.config.tie_word_embeddings and sum(p.numel() for p in model.parameters()) < 300_000
    big = make_tiny_model(tmp_path / "big", vocab_size=2048)
    tok = AutoTokenizer.from_pretrained(big)
    words = read_words(SHIPPED_WORDS)
    assert all(len(tok(w)["input_ids"]) == 1 and len(tok(w.capitalize())["input_ids"]) == 1 for w in words)


@pytest.mark.parametrize("system", [None, "Capitalize the word."])
def test_copy_base_answers_with_the_word_never_capitalised(tmp_path, system):
    """Greedy generation through the real chat template: the base copies (so the control scores
    ~0 on capitalisation) and stops with <|im_end|>."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cruijff_kit.blueprints.capitalization import demo
    from cruijff_kit.blueprints.capitalization.generate import SHIPPED_WORDS, read_words
    from cruijff_kit.tiny_model import make_tiny_model

    out = make_tiny_model(tmp_path / "copy", **demo.MODEL)
    tok = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    words = read_words(SHIPPED_WORDS)[::7]
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    copied = capitalised = 0
    for w in words:
        msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": w}]
        ids = tok(tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False), return_tensors="pt")
        with torch.no_grad():
            gen = model.generate(**ids, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)[0]
        new = gen[ids["input_ids"].shape[1]:].tolist()
        copied += new[:2] == [tok.convert_tokens_to_ids(tok.tokenize(w))[0], im_end]
        capitalised += tok.decode(new, skip_special_tokens=True).strip() == w.capitalize()
    assert copied / len(words) >= 0.95 and capitalised / len(words) <= 0.05
