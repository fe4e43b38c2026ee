"""Typed experiment plan. One model flows through design -> scaffold -> run -> analyze.

Values are plain Python types; `line` fields remember where a row came from in the summary so
later checks can point at it, and are excluded from equality.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

SUPPORTED_PREPARATION = ("torchtune",)
SUPPORTED_EVALUATION = ("inspect-ai",)


class RunType(str, enum.Enum):
    FINETUNED = "Fine-tuned"
    CONTROL = "Control"
    # evaluate a model that is not trained here: an HF directory or adapter (Checkpoint column), or
    # the Model itself; experiment/eval_only.py
    EVAL_ONLY = "Eval-only"


@dataclass(frozen=True)
class Tools:
    preparation: str = "torchtune"
    evaluation: str = "inspect-ai"


@dataclass(frozen=True)
class Run:
    name: str
    model: str
    type: RunType
    lora_rank: int | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    est_time: str = ""
    # columns the table had beyond the known ones, e.g. {"LoRA Alpha": "32"}; kept verbatim
    extra: tuple[tuple[str, str], ...] = ()
    line: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # extra columns are a mapping: their order in one table is not part of the plan
        object.__setattr__(self, "extra", tuple(sorted(self.extra)))

    @property
    def finetuned(self) -> bool:
        return self.type is RunType.FINETUNED

    @property
    def eval_only(self) -> bool:
        return self.type is RunType.EVAL_ONLY


@dataclass(frozen=True)
class Evaluation:
    task: str
    script: str
    epochs: tuple[int, ...] = (0,)
    line: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class StatusRow:
    run: str
    job: str
    job_id: str = ""
    state: str = ""
    duration: str = ""


@dataclass(frozen=True)
class Experiment:
    name: str
    experiment_dir: str = ""
    tools: Tools = field(default_factory=Tools)
    models: tuple[tuple[str, str], ...] = ()  # (name, path), in document order
    dataset: str = ""
    epochs: int = 1
    gpus: int = 1
    batch_size: int = 4
    system_prompt: str = ""
    validation: bool = False
    # further "- **Key:** value" lines of ## Configuration, kept verbatim (e.g. Learning rate default)
    config_extra: tuple[tuple[str, str], ...] = ()
    runs: tuple[Run, ...] = ()
    evaluations: tuple[Evaluation, ...] = ()
    status: tuple[StatusRow, ...] = ()
    # sections we do not interpret (## Objective, ## Notes …): (title, markdown body), preserved
    other_sections: tuple[tuple[str, str], ...] = ()

    def model_path(self, model: str) -> str:
        return dict(self.models)[model]

    @property
    def finetuned_runs(self) -> tuple[Run, ...]:
        return tuple(r for r in self.runs if r.finetuned)

    @property
    def control_runs(self) -> tuple[Run, ...]:
        return tuple(r for r in self.runs if r.type is RunType.CONTROL)

    @property
    def eval_only_runs(self) -> tuple[Run, ...]:
        return tuple(r for r in self.runs if r.eval_only)

    def config_value(self, key: str, default: str | None = None) -> str | None:
        for k, v in self.config_extra:
            if k.lower() == key.lower():
                return v
        return default
