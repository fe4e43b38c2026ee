"""What to resubmit after OUT_OF_MEMORY or TIMEOUT, as torchtune `key=value` overrides.

The generated finetune.slurm appends $CK_TUNE_OVERRIDES (space-separated key=value) to its
`tune run ...` command, so a retry changes nothing on disk: the overrides are recorded in the
ledger attempt and passed through JobSpec.env.

- OUT_OF_MEMORY: halve batch_size and double gradient_accumulation_steps, so the effective batch
  (and so the experiment) stays the same. At most MAX_OOM_RETRIES times; only exact halvings.
- TIMEOUT: resume_from_checkpoint=True when an epoch checkpoint exists. At most MAX_TIMEOUT_RETRIES.
- A search's rung (rung_overrides): stop_after_epochs=K ends the job once epoch K-1 is saved (exit 0,
  the schedule still the full run's); the next rung adds resume_from_checkpoint=True and a larger K.
  Both trainers honour it (finetune/epoch_stop.py); a retry keeps it, so a rung job that ran out of
  memory or time still stops at its rung.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import CkError
from ..finetune.epoch_stop import STOP_KEY, stop_after_epochs
from ..state.yaml_input import read_mapping_or_empty

ENV_VAR = "CK_TUNE_OVERRIDES"
MAX_OOM_RETRIES = 3
MAX_TIMEOUT_RETRIES = 3
RESUME_KEY = "resume_from_checkpoint"
# a top-level config key, or a dotted torchtune path (optimizer.lr)
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
# finetune.slurm splits $CK_TUNE_OVERRIDES on whitespace (read -r -a) and interprets no quotes, so a
# value is one word of printable characters; quotes and backslashes would reach the trainer verbatim
_VALUE = re.compile(r"^[^\s'\"\\]+$")


def format_overrides(overrides: dict[str, str]) -> str:
    """The value of ENV_VAR: `key=value` words, each checked (check_overrides)."""
    check_overrides(overrides)
    return " ".join(f"{k}={v}" for k, v in overrides.items())


def check_overrides(overrides: dict[str, str]) -> None:
    """CkError naming the field unless every override survives finetune.slurm's word splitting
    unchanged and stop_after_epochs is a whole number >= 1."""
    for key, value in overrides.items():
        text = str(value)
        if not _KEY.match(str(key)):
            raise CkError(f"trainer override key {key!r} is not a config key", field=str(key),
                          hint="letters, digits and _ (dotted for a nested torchtune key)")
        if not _VALUE.match(text):
            raise CkError(f"trainer override {key}={text!r}: the value must be one word without quotes",
                          field=str(key), hint=f"{ENV_VAR} is split on whitespace by finetune.slurm")
    if STOP_KEY in overrides:
        try:
            stop_after_epochs(str(overrides[STOP_KEY]))
        except ValueError as exc:
            raise CkError(str(exc), field=STOP_KEY) from None


def rung_overrides(previous: dict[str, str], *, stop_after: int, resume: bool) -> dict[str, str]:
    """The overrides of a job that trains up to `stop_after` epochs (a search's rung): the first
    rung from scratch (resume False), each later one from the last saved epoch (resume True).
    Other overrides of the previous attempt (an OOM's halved batch) are kept."""
    new = dict(previous)
    new[STOP_KEY] = str(stop_after)
    if resume:
        new[RESUME_KEY] = "True"
    else:
        new.pop(RESUME_KEY, None)
    check_overrides(new)
    return new


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
    new[RESUME_KEY] = "True"
    return new, f"resuming from {done[-1].name}"
