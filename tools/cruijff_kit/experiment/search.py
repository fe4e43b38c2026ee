"""A search in the plan (issue: a search that prunes): its space and how it prunes.

Minimal stand-in written by the report side so its code and tests have the interface to build
against; the plan side's full module (parse, render, validation) replaces it on merge.
"""
from __future__ import annotations

from dataclasses import dataclass

VAL_LOSS = "val_loss"


@dataclass(frozen=True)
class Dimension:
    key: str                       # a settings.py setup key, e.g. "learning_rate"
    low: float | None = None       # a range: low..high (choices empty)
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple = ()            # a categorical dimension: its values


@dataclass(frozen=True)
class Search:
    algorithm: str                 # "asha" | "tpe"
    trials: int
    rungs: int = 3
    reduction_factor: int = 3
    rung_epochs: tuple[int, ...] = (1, 3, 9)
    metric: str = VAL_LOSS         # "val_loss" | "TASK:METRIC"
    direction: str = "minimize"    # "minimize" | "maximize"
    seed: int = 0
    budget_gpu_hours: float | None = None
    space: tuple[Dimension, ...] = ()

    @property
    def metric_task(self) -> str | None:
        return None if self.metric == VAL_LOSS else self.metric.split(":", 1)[0]

    @property
    def metric_name(self) -> str:
        return self.metric if self.metric == VAL_LOSS else self.metric.split(":", 1)[1]
