"""setup_finetune.yaml: read it back strictly (file:line: field), every key checked against the
settings schema (cruijff_kit/settings.py).

Values that reach finetune.slurm (the `slurm:` mapping, the environment) are held to what a
shell line may carry: no newlines or control characters, known keys only.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import CkError, CkErrors
from ..executors.resources import field_problem, parse_mem_mb, parse_time_min
from ..settings import SETUP_SETTINGS, setup_key_suggestion
from ..state import layout

SETUP_FILE = layout.SETUP
SCHEMA = {s.key: s for s in SETUP_SETTINGS}
OPTIONAL = {k for k, s in SCHEMA.items() if not s.required and s.key not in ("lora_rank", "learning_rate",
                                                                              "batch_size", "epochs", "lora_alpha",
                                                                              "num_gpus")}
SLURM_KEYS = {"job_name": str, "account": str, "partition": str, "qos": str, "constraint": str, "time": str, "mem": str,
              "cpus": int, "gpus": int, "nodes": int, "modules": list, "output": str}
_TYPED = {"cpus": "cpus_per_task", "gpus": "gpus_per_node", "nodes": "nodes"}  # executors/resources.py names
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SLURM_VALUE = re.compile(r"[A-Za-z0-9_.,:%/+=@\[\]-]*")


def _slurm_problems(value: dict) -> list[tuple[str, str]]:
    out = []
    for key, v in value.items():
        fld = f"slurm.{key}"
        kind = SLURM_KEYS.get(key)
        if kind is None:
            out.append((fld, f"unknown SLURM setting (known: {', '.join(SLURM_KEYS)})"))
            continue
        if v is None:
            continue
        if kind is int:
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 100_000:
                out.append((fld, f"expected a whole number 0..100000, got {str(v)[:40]!r}"))
            elif problem := field_problem(_TYPED[key], v):  # the #SBATCH option's own bound
                out.append((fld, problem))
        elif kind is list:
            if not isinstance(v, list) or not all(isinstance(m, str) and _SLURM_VALUE.fullmatch(m) for m in v):
                out.append((fld, "expected a list of module names (letters, digits, . _ - / +)"))
        elif not isinstance(v, str):
            out.append((fld, f"expected text, got {str(v)[:40]!r}"))
        elif _CONTROL.search(v):
            out.append((fld, "contains a newline or control character (it would become a line of the job script)"))
        elif len(v) > 256:
            out.append((fld, f"is {len(v)} characters long (at most 256)"))
        elif key in ("time", "mem"):
            try:
                (parse_time_min if key == "time" else parse_mem_mb)(v)
            except ValueError as exc:
                out.append((fld, str(exc)))
        elif v and (problem := field_problem(key, v)):  # an #SBATCH option (executors/resources.py)
            out.append((fld, problem))
    return out


def check_setup(data: dict, path: str | Path, lines: dict[tuple, int] | None = None) -> list[CkError]:
    lines = lines or {}
    errors: list[CkError] = []
    for key, value in data.items():
        s = SCHEMA.get(key)
        if s is None:
            near = setup_key_suggestion(str(key))
            errors.append(CkError(f"unknown setting {str(key)[:60]!r}", file=path, line=lines.get((key,)),
                                  field=str(key)[:60],
                                  hint=(f"did you mean {near!r}? " if near else "")
                                  + "fields: skills/scaffold-torchtune/references/setup-fields.md"))
            continue
        problem = s.problem(value)
        if problem is None and s.kind in ("text", "name") and isinstance(value, str) and key != "system_prompt" \
                and _CONTROL.search(value):
            problem = "contains a newline or control character"
        if problem:
            errors.append(CkError(problem, file=path, line=lines.get((key,)), field=key))
        elif key == "slurm":
            for fld, msg in _slurm_problems(value):
                errors.append(CkError(msg, file=path, line=lines.get(("slurm", fld[6:])) or lines.get((key,)),
                                      field=fld))
        elif key == "environment":
            for k in ("path", "name"):
                v = value.get(k)
                if isinstance(v, str) and _CONTROL.search(v):
                    errors.append(CkError("contains a newline or control character", file=path,
                                          line=lines.get((key,)), field=f"environment.{k}"))
    for key, s in SCHEMA.items():
        if key not in data and key not in OPTIONAL:
            errors.append(CkError("missing required setting", file=path, line=None, field=key))
    ds, fmt = data.get("dataset"), data.get("dataset_format")
    if isinstance(ds, str) and fmt in ("json", "parquet"):
        suffix = Path(ds).suffix.lower()
        if suffix and suffix != f".{fmt}":
            errors.append(CkError(f"dataset {ds[:120]!r} is not {fmt}", file=path, line=lines.get(("dataset",)),
                                  field="dataset", hint="a .json file (dataset_format: json) or a directory of "
                                                        ".parquet splits (dataset_format: parquet)"))
    return errors


def load_setup_with_lines(path: str | Path) -> tuple[dict, dict[tuple, int]]:
    from ..state.yaml_input import load_user_yaml

    p = Path(path)
    if not p.is_file():
        raise CkError(f"{SETUP_FILE} not found", file=p, hint="run `ck scaffold` for this experiment")
    data, lines = load_user_yaml(p, SETUP_FILE)
    if not isinstance(data, dict):
        raise CkError("expected a mapping of settings", file=p, line=1)
    errors = check_setup(data, p, lines)
    if errors:
        raise errors[0] if len(errors) == 1 else CkErrors(errors[:50])
    return data, lines


def load_setup(path: str | Path) -> dict:
    """Read and validate a setup_finetune.yaml; every problem reported with its line."""
    return load_setup_with_lines(path)[0]


def differing_fields(on_disk: dict, generated: dict) -> list[str]:
    """Keys whose values differ (lists and tuples alike), for 'the file was edited by hand'."""
    def same(a: Any, b: Any) -> bool:
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, bool) or isinstance(b, bool):
            return a is b
        return a == b

    keys = list(dict.fromkeys(list(generated) + list(on_disk)))
    return [k for k in keys if not same(on_disk.get(k), generated.get(k))]
