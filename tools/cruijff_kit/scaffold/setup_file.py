"""setup_finetune.yaml: build it for a run, and read it back strictly (file:line: field)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..errors import CkError, CkErrors
from ..experiment.naming import SAFE_NAME

SETUP_FILE = "setup_finetune.yaml"


def _int(minimum: int | None = None, nullable: bool = False) -> Callable[[Any], str | None]:
    def check(v):
        if v is None and nullable:
            return None
        if isinstance(v, bool) or not isinstance(v, int):
            return f"expected a whole number, got {v!r}"
        if minimum is not None and v < minimum:
            return f"must be >= {minimum}, got {v}"
        return None
    return check


def _num(positive: bool = True, below: float | None = None) -> Callable[[Any], str | None]:
    def check(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return f"expected a number, got {v!r}"
        if positive and not v > 0:
            return f"must be > 0, got {v}"
        if not positive and v < 0:
            return f"must be >= 0, got {v}"
        if below is not None and not v < below:
            return f"must be < {below}, got {v}"
        return None
    return check


def _str(nonempty: bool = False, nullable: bool = False, choices: tuple = ()) -> Callable[[Any], str | None]:
    def check(v):
        if v is None and nullable:
            return None
        if not isinstance(v, str):
            return f"expected text, got {v!r}"
        if nonempty and not v.strip():
            return "must not be empty"
        if choices and v not in choices:
            return f"must be one of {', '.join(choices)}, got {v!r}"
        return None
    return check


def _safe(v):
    if not isinstance(v, str) or not SAFE_NAME.match(v) or ".." in v:
        return f"unsafe name {v!r} (letters, digits, '.', '_', '+', '-')"
    return None


def _bool(v):
    return None if isinstance(v, bool) else f"expected true or false, got {v!r}"


def _mapping(v):
    return None if isinstance(v, dict) else f"expected a mapping, got {v!r}"


def _environment(v):
    if not isinstance(v, dict) or v.get("kind") not in ("venv", "conda", "none"):
        return "expected {kind: venv, path: …} | {kind: conda, name: …} | {kind: none}"
    if v["kind"] == "venv" and not v.get("path"):
        return "a venv environment needs a path"
    if v["kind"] == "conda" and not v.get("name"):
        return "a conda environment needs a name"
    return None


SCHEMA: dict[str, Callable[[Any], str | None]] = {
    "experiment_name": _str(nonempty=True),
    "run_name": _safe,
    "my_wandb_project": _str(nullable=True),
    "my_wandb_run_name": _str(nullable=True),
    "model_name": _str(nonempty=True),
    "model_checkpoint": _str(nonempty=True),
    "dataset": _str(nonempty=True),
    "dataset_format": _str(choices=("json", "parquet")),
    "lora_rank": _int(1),
    "lora_alpha": _num(),
    "lora_dropout": _num(positive=False, below=1.0),
    "learning_rate": _num(),
    "batch_size": _int(1),
    "gradient_accumulation_steps": _int(1),
    "epochs": _int(1),
    "max_steps_per_epoch": _int(1, nullable=True),
    "num_gpus": _int(0),
    "num_nodes": _int(1),
    "num_cpu_ranks": _int(1),
    "seed": _int(0),
    "lr_warmup_steps": _int(0),
    "weight_decay": _num(positive=False),
    "system_prompt": _str(),
    "enable_validation": _bool,
    "validation_every_n_steps": _int(1, nullable=True),
    "logger": _str(choices=("disk", "wandb")),
    "extra_overrides": _mapping,
    "output_dir": _str(nonempty=True),
    "environment": _environment,
    "slurm": _mapping,
}
OPTIONAL = {"lr_warmup_steps", "weight_decay", "my_wandb_project", "my_wandb_run_name", "max_steps_per_epoch", "extra_overrides",
            "system_prompt", "enable_validation", "seed", "logger", "num_nodes", "num_cpu_ranks", "lora_dropout",
            "gradient_accumulation_steps", "validation_every_n_steps"}


def load_setup(path: str | Path) -> dict:
    """Read and validate a setup_finetune.yaml; every problem reported with its line."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise CkError(f"{SETUP_FILE} not found", file=p, hint="run `ck scaffold` for this experiment")
    text = p.read_text(encoding="utf-8")
    # Parse once: the node tree gives each key's line, and the same tree builds the values.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise CkError(f"invalid YAML: {getattr(exc, 'problem', None) or exc}", file=p,
                      line=mark.line + 1 if mark else None) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict) or node is None:
        raise CkError("expected a mapping of settings", file=p, line=1)
    lines = {k.value: k.start_mark.line + 1 for k, _ in node.value}
    errors = []
    for key, value in data.items():
        check = SCHEMA.get(key)
        if check is None:
            errors.append(CkError(f"unknown setting {key!r}", file=p, line=lines.get(key), field=str(key),
                                  hint="known: " + ", ".join(sorted(SCHEMA))))
            continue
        problem = check(value)
        if problem:
            errors.append(CkError(problem, file=p, line=lines.get(key), field=key))
    for key in SCHEMA:
        if key not in data and key not in OPTIONAL:
            errors.append(CkError("missing required setting", file=p, line=None, field=key))
    if errors:
        raise errors[0] if len(errors) == 1 else CkErrors(errors)
    return data
