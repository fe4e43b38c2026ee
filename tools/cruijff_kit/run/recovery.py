"""What to resubmit after OUT_OF_MEMORY or TIMEOUT, as torchtune `key=value` overrides.

The generated finetune.slurm appends $CK_TUNE_OVERRIDES (space-separated key=value) to its
`tune run ...` command, so a retry changes nothing on disk: the overrides are recorded in the
ledger attempt and passed through JobSpec.env.

- OUT_OF_MEMORY: halve batch_size and double gradient_accumulation_steps, so the effective batch
  (and so the experiment) stays the same. At most MAX_OOM_RETRIES times; only exact halvings.
- TIMEOUT: resume_from_checkpoint=True when an epoch checkpoint exists. At most MAX_TIMEOUT_RETRIES.
"""
from __future__ import annotations

from pathlib import Path

from ..state.yaml_input import read_mapping_or_empty

ENV_VAR = "CK_TUNE_OVERRIDES"
MAX_OOM_RETRIES = 3
MAX_TIMEOUT_RETRIES = 3


def format_overrides(overrides: dict[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in overrides.items())


def _config_value(finetune_yaml: Path | None, setup_yaml: Path | None, key: str):
    for path in (finetune_yaml, setup_yaml):
        data = read_mapping_or_empty(path)  # unreadable: no value known, the rules decline to guess
        if data.get(key) is not None:
            return data[key]
    return None


def oom_retry(previous: dict[str, str], *, attempts_so_far: int, finetune_yaml: Path | None,
              setup_yaml: Path | None) -> tuple[dict[str, str] | None, str]:
    """(new overrides, why) — overrides None when no further retry makes sense."""
    if attempts_so_far >= MAX_OOM_RETRIES:
        return None, f"out of memory {attempts_so_far + 1} times; giving up after {MAX_OOM_RETRIES} retries"
    try:
        batch = int(previous.get("batch_size") or _config_value(finetune_yaml, setup_yaml, "batch_size") or 0)
        accum = int(previous.get("gradient_accumulation_steps")
                    or _config_value(finetune_yaml, setup_yaml, "gradient_accumulation_steps") or 1)
    except (TypeError, ValueError):
        return None, "batch_size / gradient_accumulation_steps are not integers; cannot retry"
    if batch < 2 or batch % 2:
        return None, f"batch_size {batch} cannot be halved exactly (the effective batch would change)"
    new = dict(previous)
    new.update(batch_size=str(batch // 2), gradient_accumulation_steps=str(accum * 2))
    return new, (f"batch_size {batch} -> {batch // 2}, gradient_accumulation_steps {accum} -> "
                 f"{accum * 2} (effective batch {batch * accum} unchanged)")


def timeout_retry(previous: dict[str, str], *, attempts_so_far: int,
                  checkpoints: tuple[Path, ...]) -> tuple[dict[str, str] | None, str]:
    if attempts_so_far >= MAX_TIMEOUT_RETRIES:
        return None, f"timed out {attempts_so_far + 1} times; giving up"
    from ..state.artifacts import checkpoint_complete

    done = [p for p in checkpoints if checkpoint_complete(p)]
    if not done:
        return None, "timed out before the first epoch checkpoint; nothing to resume from"
    new = dict(previous)
    new["resume_from_checkpoint"] = "True"
    return new, f"resuming from {done[-1].name}"
