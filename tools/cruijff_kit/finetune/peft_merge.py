"""A TRL run's PEFT adapter epoch -> merged Hugging Face weights (PEFT's own merge_and_unload).

Used by the eval launcher (an adapter epoch is merged into node-local scratch, as torchtune's are by
merge.py) and by the TRL recipe when the plan asks for merged weights. Imports torch, peft, transformers.
"""
from __future__ import annotations

import json
from pathlib import Path

from cruijff_kit.errors import CkError
from cruijff_kit.finetune.prompt_format import CHECKPOINT_RECORD, read_checkpoint_record

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")


def is_peft_adapter(model_dir: Path) -> bool:
    """An adapter-only epoch written by ck's TRL recipe (PEFT layout; torchtune's is merge.py's)."""
    from cruijff_kit.state.artifacts import has_weights

    d = Path(model_dir)
    if has_weights(d) or not all((d / f).is_file() for f in ADAPTER_FILES):
        return False
    record = read_checkpoint_record(d) or {}
    return record.get("trainer") == "trl"


def merge_into(epoch_dir: Path, base: Path | str, out_dir: Path) -> Path:
    """Base + adapter merged and saved to out_dir (weights, config, the epoch's tokenizer and record)."""
    import torch
    from peft import PeftModel

    from cruijff_kit.finetune.peft_compat import peft_without_old_torchao

    peft_without_old_torchao()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    epoch_dir, out_dir = Path(epoch_dir), Path(out_dir)
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32 if not torch.cuda.is_available()
                                                 else "auto")
    try:
        model = PeftModel.from_pretrained(model, str(epoch_dir)).merge_and_unload()
    except (ValueError, KeyError, RuntimeError, OSError) as e:
        raise CkError(f"the adapter does not load onto its base model {base}: {e}", file=epoch_dir) from e
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out_dir))
    if out_dir != epoch_dir:
        AutoTokenizer.from_pretrained(str(epoch_dir)).save_pretrained(str(out_dir))
        for name in ("tokenizer_config.json", CHECKPOINT_RECORD):  # the trained template and record, verbatim
            (out_dir / name).write_text((epoch_dir / name).read_text())
        (out_dir / "chat_template.jinja").unlink(missing_ok=True)
    record = json.loads((out_dir / CHECKPOINT_RECORD).read_text())
    record["adapter_only"] = False  # merged weights here (the adapter may stay beside them)
    (out_dir / CHECKPOINT_RECORD).write_text(json.dumps(record, indent=2) + "\n")
    return out_dir


def materialise_peft(epoch_dir: Path, out_dir: Path, base_model: str | Path | None = None) -> Path:
    """Scratch copy of a TRL adapter epoch, merged (the eval launcher's counterpart of merge.materialise)."""
    record = read_checkpoint_record(Path(epoch_dir)) or {}
    recorded = record.get("base_model")
    if base_model is not None and recorded and Path(recorded).resolve() != Path(base_model).resolve():
        raise CkError(f"adapter was trained on {recorded}, not on the given base model {base_model}", file=epoch_dir)
    base = base_model if base_model is not None else recorded
    if not base:
        raise CkError("adapter directory does not record its base model (no ck_checkpoint.json)", file=epoch_dir)
    return merge_into(Path(epoch_dir), base, Path(out_dir) / "epoch_0")
