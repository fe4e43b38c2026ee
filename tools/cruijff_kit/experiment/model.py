"""Typed experiment plan. One model flows through design -> scaffold -> run -> analyze.

Values are plain Python types; `line` fields remember where a row came from in the summary so
later checks can point at it, and are excluded from equality. Settings (LoRA rank, dropout,
warmup, …) are the ones of settings.py: a run's own values (runs-table columns)
come first, then the experiment's Configuration, then the schema's default.
"""
from __future__ import annotations

import enum
import re
from dataclasses import replace, dataclass, field
from typing import Any

from ..settings import BY_KEY, resolve

SUPPORTED_PREPARATION = ("torchtune", "trl")
SUPPORTED_EVALUATION = ("inspect-ai",)
EPOCH_WORDS = ("all", "last")
_TRIAL_NAME = re.compile(r"t(\d+)_")


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


def _canonical(settings) -> tuple[tuple[str, Any], ...]:
    """Settings as a sorted tuple without 'not set' entries; lists become tuples (hashable)."""
    items = dict(settings).items() if not isinstance(settings, dict) else settings.items()
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in items if v is not None))


@dataclass(frozen=True)
class Run:
    name: str
    model: str
    type: RunType
    # this run's own setting values (runs-table columns), by setup key; absent = the experiment's
    settings: tuple[tuple[str, Any], ...] = ()
    est_time: str = ""
    est_disk: str = ""  # what its output directory will hold (experiment/disk.py)
    # columns the table had beyond the schema's, e.g. {"Notes": "…"}; kept verbatim
    extra: tuple[tuple[str, str], ...] = ()
    line: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # mappings: their order in one table is not part of the plan
        object.__setattr__(self, "extra", tuple(sorted(self.extra)))
        object.__setattr__(self, "settings", _canonical(self.settings))

    def value(self, key: str) -> Any:
        return dict(self.settings).get(key)

    def __getattr__(self, name: str) -> Any:
        # run.lora_rank, run.lora_dropout, …: a run's own value of any per-run setting (None if unset)
        if name.startswith("_") or name in ("settings", "name", "model", "type", "extra", "line", "est_time", "est_disk"):
            raise AttributeError(name)
        s = BY_KEY.get(name)
        if s is None or not s.per_run:
            raise AttributeError(name)
        return self.value(name)

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
    epochs: tuple[int, ...] = (0,)   # checkpoints to evaluate (0-based), `all`/`last` resolved
    epoch_spec: str = ""             # "all" | "last" as the plan wrote it; "" = the list above
    split: str | None = None         # None: the experiment's evaluation split
    system_prompt: str | None = None  # None: the experiment's evaluation system prompt
    runs: tuple[str, ...] = ()       # run names this task evaluates; () = every run
    dataset: str = ""                # "" = the experiment's dataset
    description: str = ""
    line: int | None = field(default=None, compare=False)

    def applies_to(self, run_name: str) -> bool:
        return not self.runs or run_name in self.runs


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
    question: str = ""
    # Configuration values the plan states, by setup key (settings.py); unset = default
    settings: tuple[tuple[str, Any], ...] = ()
    runs: tuple[Run, ...] = ()
    evaluations: tuple[Evaluation, ...] = ()
    status: tuple[StatusRow, ...] = ()
    # sections we do not interpret (## Objective, ## Notes …): (title, markdown body), preserved
    other_sections: tuple[tuple[str, str], ...] = ()
    # what the parser read but ck does not act on, said to the user (never silently dropped)
    warnings: tuple[str, ...] = field(default=(), compare=False)
    # a search that prunes (experiment/search.Search): its trials are the fine-tuned runs
    search: object = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "settings", _canonical(self.settings))
        # a task's split that is the plan's evaluation split is the plan's (None): the plan table
        # shows every task's split, and reading it back must give the same experiment
        default_split = self.value("eval_split")
        if any(e.split is not None and e.split == default_split for e in self.evaluations):
            object.__setattr__(self, "evaluations", tuple(
                replace(e, split=None) if e.split == default_split else e for e in self.evaluations))

    def model_path(self, model: str) -> str:
        return dict(self.models)[model]

    def value(self, key: str, run: Run | None = None) -> Any:
        """Effective value of a setting: the run's own, else the plan's, else the default."""
        return resolve(key, dict(run.settings) if run else {}, dict(self.settings))

    def stated(self, key: str) -> Any:
        """The plan's own Configuration value (None when it leaves the default)."""
        return dict(self.settings).get(key)

    @property
    def epochs(self) -> int:
        return self.value("epochs")

    @property
    def gpus(self) -> int:
        return self.value("num_gpus")

    @property
    def batch_size(self) -> int:
        return self.value("batch_size")

    @property
    def system_prompt(self) -> str:
        return self.value("system_prompt")

    @property
    def validation(self) -> bool:
        return self.value("enable_validation")

    @property
    def finetuned_runs(self) -> tuple[Run, ...]:
        return tuple(r for r in self.runs if r.finetuned)

    def trials(self) -> tuple[tuple[int, Run], ...]:
        """(trial number, fine-tuned run) of a search, in plan order; () without one. The number is
        the run name's `tNN_` prefix (t03_lr1e-4 -> 3), else the run's place among the trials."""
        if self.search is None:
            return ()
        out = []
        for i, run in enumerate(self.finetuned_runs):
            m = _TRIAL_NAME.match(run.name)
            out.append((int(m.group(1)) if m else i, run))
        return tuple(out)

    @property
    def control_runs(self) -> tuple[Run, ...]:
        return tuple(r for r in self.runs if r.type is RunType.CONTROL)

    @property
    def eval_only_runs(self) -> tuple[Run, ...]:
        return tuple(r for r in self.runs if r.eval_only)

    def eval_epochs(self, ev: Evaluation, run: Run) -> tuple[int, ...]:
        """The checkpoints of `run` that `ev` evaluates (a run may train its own number of epochs)."""
        n = self.value("epochs", run)
        if ev.epoch_spec == "all":
            return tuple(range(n))
        if ev.epoch_spec == "last":
            return (n - 1,)
        return ev.epochs

    def eval_split(self, ev: Evaluation) -> str:
        return ev.split if ev.split is not None else self.value("eval_split")

    def eval_system_prompt(self, ev: Evaluation) -> str:
        if ev.system_prompt is not None:
            return ev.system_prompt
        stated = self.stated("eval_system_prompt")
        return stated if stated is not None else self.system_prompt

    def config_value(self, key: str, default: str | None = None) -> str | None:
        """A setting's effective value as summary text, by any of its names (older callers)."""
        from ..settings import lookup

        s = lookup(key)
        if s is None:
            return default
        value = self.value(s.key)
        return default if value is None else s.format(value)
