"""<run>/logs/train_examples.jsonl: what a fine-tune really trained on, for either trainer.

The first 8 training examples after tokenization, one JSON object a line: `input_ids`, `labels`
(-100 where no loss is taken) and `text` (the ids decoded with special tokens). Evaluation records
the ids each sample's prompt became (`prompt_token_ids`, evaluate/hf_model.py), so anyone can check
that the prompt evaluated is the prompt trained on, token for token.
"""
from __future__ import annotations

import json
from pathlib import Path

KEPT = 8
FILE = Path("logs") / "train_examples.jsonl"  # relative to the run directory


def write(path: Path, examples, decode) -> None:
    """examples: (input_ids, labels) pairs; decode: ids -> text (special tokens kept)."""
    from cruijff_kit.util.fs import atomic_write_text

    lines = []
    for ids, labels in examples:
        ids, labels = [int(i) for i in ids], [int(x) for x in labels]
        lines.append(json.dumps({"input_ids": ids, "labels": labels, "text": decode(ids)}, ensure_ascii=False))
        if len(lines) == KEPT:
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(line + "\n" for line in lines))


class TorchtuneExamples:
    """Mixin for ck's torchtune recipes: after setup, the dataset's first items (rank 0 only); the
    job runs in its run directory (finetune.slurm changes to it)."""

    def setup(self, cfg) -> None:
        super().setup(cfg=cfg)
        if getattr(self, "_is_rank_zero", True):
            ds = self._dataloader.dataset
            items = (ds[i] for i in range(min(len(ds), KEPT)))
            write(Path.cwd() / FILE, ((it["tokens"], it["labels"]) for it in items), self._decode)

    def _decode(self, ids: list[int]) -> str:
        try:
            return self._tokenizer.decode(ids, skip_special_tokens=False)
        except TypeError:  # a tokenizer whose decode has no such flag
            return self._tokenizer.decode(ids)
