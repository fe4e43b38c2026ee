"""The tiny model: byte-for-byte reproducible, loadable by transformers, one token per demo word."""
from __future__ import annotations

import subprocess
import sys


def test_byte_for_byte_reproducible_and_cli(tmp_path):
    from cruijff_kit.tiny_model import make_tiny_model

    a = make_tiny_model(tmp_path / "a", seed=3)
    subprocess.run([sys.executable, "-m", "cruijff_kit.tiny_model", str(tmp_path / "b"), "--seed", "3"], check=True,
                   capture_output=True)
    names = sorted(p.name for p in a.iterdir())
    assert names == ["config.json", "generation_config.json", "merges.txt", "model.safetensors", "tokenizer.json",
                     "tokenizer_config.json", "vocab.json"]
    assert all((a / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in names)
    c = make_tiny_model(tmp_path / "c", seed=4)
    assert (c / "model.safetensors").read_bytes() != (a / "model.safetensors").read_bytes()


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
