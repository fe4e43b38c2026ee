"""Learning is real: the demo settings make the fine-tuned tiny model beat the base model."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from cruijff_kit.blueprints.capitalization import demo
from cruijff_kit.blueprints.capitalization.generate import generate
from cruijff_kit.finetune.config import render_finetune_yaml
from cruijff_kit.tiny_model import make_tiny_model


def _accuracy(model_dir, words) -> float:
    """Greedy exact match through the chat template, as inspect's hf provider prompts the model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    correct = 0
    for w in words:
        prompt = tok.apply_chat_template([{"role": "user", "content": w}], add_generation_prompt=True, tokenize=False)
        ids = tok(prompt, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
        correct += tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip() == w.capitalize()
    return correct / len(words)


@pytest.mark.slow
def test_demo_settings_fine_tuned_beats_base(tmp_path):
    model = make_tiny_model(tmp_path / "tiny-qwen", **demo.MODEL)
    data = generate(tmp_path / "words.json", **demo.DATA)
    setup = {"run_name": "demo", "model_checkpoint": str(model), "dataset": str(data), "dataset_format": "json",
             "seed": 1234, "output_dir": str(tmp_path / "out"), **demo.TRAINING}
    (tmp_path / "finetune.yaml").write_text(render_finetune_yaml(setup))
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "cruijff_kit.finetune.recipes.lora_single_device",
                           "--config", str(tmp_path / "finetune.yaml")], capture_output=True, text=True, timeout=300)
    train_s = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    words = sorted({r["input"] for r in json.loads(data.read_text())[demo.EVAL_SPLIT]})
    base = _accuracy(model, words)
    tuned = _accuracy(tmp_path / "out" / f"epoch_{demo.TRAINING['epochs'] - 1}", words)
    print(f"demo: train {train_s:.1f}s, base {base:.2f}, fine-tuned {tuned:.2f} on {len(words)} words")
    assert tuned > base
