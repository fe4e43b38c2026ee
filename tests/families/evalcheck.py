"""Helpers: the ids training builds for each row, and the ids an inspect evaluation really feeds
the model (captured at model.generate inside the eval process, left padding removed)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cruijff_kit.finetune.config import finetune_config, render_finetune_yaml

SYSTEM_PROMPT = "Answer with the word, capitalized."


def words_dataset(path: Path) -> Path:
    words = "apple banana cherry orange grape lemon melon peach pear plum house garden".split()
    rows = [{"input": w, "output": w.capitalize()} for w in words]
    path.write_text(json.dumps({"train": rows[:8], "validation": rows[8:10], "test": rows[:4] + rows[10:]}))
    return path


def setup_for(model_dir: Path, words: Path, out: Path, system_prompt: str = "") -> dict:
    """A setup_finetune.yaml dict as the scaffold writes it (small LoRA, CPU)."""
    return {"run_name": "r", "model_checkpoint": str(model_dir), "dataset": str(words), "dataset_format": "json",
            "lora_rank": 4, "lora_alpha": 8, "learning_rate": 1e-3, "batch_size": 2, "epochs": 1,
            "output_dir": str(out), "seed": 0, "system_prompt": system_prompt, "lr_warmup_steps": 0}


def training_items(cfg: dict, split: str) -> list[dict]:
    """torchtune's own dataset items (tokens, labels) of one split, from the finetune.yaml components."""
    from omegaconf import OmegaConf
    from torchtune import config as tt_config

    c = OmegaConf.create({"tokenizer": cfg["tokenizer"], "dataset": {**cfg["dataset"], "field": split}})
    ds = tt_config.instantiate(c.dataset, tt_config.instantiate(c.tokenizer))
    return [ds[i] for i in range(len(ds))]


def training_sequences(cfg: dict, split_rows: list[dict]) -> dict[str, list[int]]:
    """input text -> the training sequence's ids, built by torchtune's own dataset + tokenizer from
    the finetune.yaml components (the test split's rows, run through the training pipeline)."""
    from omegaconf import OmegaConf
    from torchtune import config as tt_config
    from torchtune.data import CROSS_ENTROPY_IGNORE_IDX  # noqa: N811

    c = OmegaConf.create({"tokenizer": cfg["tokenizer"], "dataset": {**cfg["dataset"], "field": "test"}})
    tokenizer = tt_config.instantiate(c.tokenizer)
    ds = tt_config.instantiate(c.dataset, tokenizer)
    out = {}
    for i, row in enumerate(split_rows):
        item = ds[i]
        assert any(lab != CROSS_ENTROPY_IGNORE_IDX for lab in item["labels"])
        out[row["input"]] = list(item["tokens"])
    return out


def assert_prompt_is_training_prefix(prompt: list[int], sequence: list[int], answer: str, hf_tokenizer) -> None:
    """The evaluation prompt is the training sequence up to exactly where the answer's text starts."""
    assert sequence[: len(prompt)] == prompt, (hf_tokenizer.convert_ids_to_tokens(prompt),
                                               hf_tokenizer.convert_ids_to_tokens(sequence))
    rest = sequence[len(prompt):]
    assert rest[0] not in hf_tokenizer.all_special_ids, hf_tokenizer.convert_ids_to_tokens(rest)
    assert hf_tokenizer.decode(rest, skip_special_tokens=True).strip() == answer


def eval_inputs(model_dir: Path, fmt_name: str | None, data_path: Path, system_prompt: str, scratch: Path,
                log_dir: Path) -> tuple[list[list[int]], object]:
    """Run the capitalization task through ck's launcher pieces (overlay + ck-hf provider) and
    return the input ids of every generate call and the eval log."""
    import torch
    from inspect_ai import eval as inspect_eval
    from inspect_ai.model import get_model

    import cruijff_kit.evaluate.hf_model  # noqa: F401
    from cruijff_kit.blueprints.capitalization.inspect_task import capitalization
    from cruijff_kit.evaluate.launch import model_arguments

    name, args, meta = model_arguments(model_dir, fmt_name, scratch)
    model = get_model(name, **args)
    hf = model.api.model
    seen: list[list[int]] = []
    real_generate = hf.generate

    def capture(*a, input_ids=None, attention_mask=None, **kw):
        for ids, m in zip(input_ids, attention_mask):
            seen.append(ids[m.bool()].tolist())
        return real_generate(*a, input_ids=input_ids, attention_mask=attention_mask, **kw)

    hf.generate = capture
    with torch.inference_mode():
        log = inspect_eval(capitalization(data_path=str(data_path), split="test", system_prompt=system_prompt),
                           model=model, max_tokens=4, log_dir=str(log_dir), display="none", metadata=meta)[0]
    return seen, log


def fine_tune(setup: dict, run_dir) -> dict:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "finetune.yaml").write_text(render_finetune_yaml(setup))
    proc = subprocess.run([sys.executable, "-m", "cruijff_kit.finetune.recipes.lora_single_device", "--config",
                           "finetune.yaml"], cwd=run_dir, env=os.environ.copy(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return finetune_config(setup)
