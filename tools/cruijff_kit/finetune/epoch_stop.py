"""`stop_after_epochs=K`: a trainer override that ends a job at an epoch boundary (a search's rung).

Both trainers (torchtune recipes, TRL recipe) accept it as a key=value override:
training runs until K epochs are complete, epoch K-1 is saved exactly as any intermediate epoch
(the state a resume needs included), and the job exits 0. The run's total `epochs` is unchanged, so
the learning-rate schedule (warmup, cosine) is the full run's; `resume_from_checkpoint=True`
(optionally with a larger `stop_after_epochs`) goes on from the last saved epoch, and the result is
the one an uninterrupted run gives. K >= epochs changes nothing.

Pure: no torch import, so run/recovery.py can validate an override before submitting it.
"""
from __future__ import annotations

STOP_KEY = "stop_after_epochs"


def stop_after_epochs(value: object) -> int | None:
    """The override's value as an int >= 1, or None when absent (null / empty). ValueError otherwise.

    Accepts an int or its decimal text (how a key=value override arrives, and how YAML / OmegaConf
    parse it); a bool, a float, a fraction or a number below 1 is refused: a rung is whole epochs."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null", "none", "~")):
        return None
    if isinstance(value, bool):
        raise ValueError(f"{STOP_KEY} must be a whole number of epochs >= 1, got {value!r}")
    if isinstance(value, int):
        k = value
    elif isinstance(value, str) and value.strip().isdigit():
        k = int(value.strip())
    else:
        raise ValueError(f"{STOP_KEY} must be a whole number of epochs >= 1, got {value!r}")
    if k < 1:
        raise ValueError(f"{STOP_KEY} must be a whole number of epochs >= 1, got {k}")
    return k


def stops_after(epoch: int, stop: int | None, total_epochs: int) -> bool:
    """True when 0-based `epoch` just finished is the last one this job trains before a stop:
    a stop at K ends after epoch K-1, unless K-1 is the run's last epoch anyway (a normal finish)."""
    return stop is not None and epoch + 1 == stop and stop < total_epochs
