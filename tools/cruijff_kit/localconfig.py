"""claude.local.md: the user's environment (paths, venv or conda, W&B project) plus SLURM defaults.

Lines of the form `key: value` (optionally as `- key: value` or `- **key:** value`) are read
anywhere in the file; prose is ignored. See claude.local.md.example for every key.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from .errors import CkError
from .executors.resources import field_problem, parse_mem_mb, parse_time_min

_LINE = re.compile(r"^\s*(?:[-*]\s+)?(?:\*\*)?(?P<key>[A-Za-z_][A-Za-z0-9_]*)(?:\*\*)?\s*:\s*(?:\*\*)?\s*(?P<val>.*?)\s*$")


DEFAULT_TIME, DEFAULT_MEM = "01:00:00", "32G"  # when neither claude.local.md nor an estimate says


@dataclass
class SlurmDefaults:
    account: str = ""
    partition: str = ""
    constraint: str = ""
    qos: str = ""
    time: str = ""  # "": unset; scaffold derives it from the run's estimate (else DEFAULT_TIME)
    mem: str = ""  # "": unset; scaffold derives it from the model's size (else DEFAULT_MEM)
    cpus: int = 4
    gpus: int | None = None  # None: the experiment's GPU count
    modules: list[str] = field(default_factory=list)
    max_submitted: int | None = None  # jobs submitted at once (run/submission_window.py); None: ask sacctmgr
    submit_stagger: int | None = None  # seconds between two sbatch calls of ck run (sites that ask for it)


@dataclass
class LocalConfig:
    conda_env: str = ""
    venv: str = ""
    output_dir_base: str = ""
    my_wandb_project: str = ""
    scratch_dir: str = ""
    results_store: str = ""  # the SQLite file every `ck analyze` writes into (analyze/store.py)
    slurm: SlurmDefaults = field(default_factory=SlurmDefaults)
    path: str | None = None  # where it was read from; None = defaults
    warnings: list[str] = field(default_factory=list)

    def sbatch(self, job_name: str, *, gpus: int, nodes: int = 1, time: str | None = None,
               mem: str | None = None) -> dict:
        """The `slurm` settings of one generated script: claude.local.md's values, else the
        caller's estimates (`time`, `mem`), else DEFAULT_TIME / DEFAULT_MEM; plus per-job values."""
        out = {
            "job_name": job_name[:64],
            "account": self.slurm.account or None,
            "partition": self.slurm.partition or None,
            "constraint": self.slurm.constraint or None,
            "time": self.slurm.time or time or DEFAULT_TIME,
            "mem": self.slurm.mem or mem or DEFAULT_MEM,
            "cpus": self.slurm.cpus,
            "gpus": gpus,
            "nodes": nodes,
            "modules": list(self.slurm.modules),
            "output": "slurm-%j.out",
        }
        if self.slurm.qos:  # only when set: setup files written before slurm_qos stay byte-identical
            out["qos"] = self.slurm.qos
        return out

    def environment(self) -> dict:
        """How generated scripts activate Python: conda env, venv, or the interpreter running ck."""
        if self.conda_env:
            return {"kind": "conda", "name": self.conda_env}
        if self.venv:
            return {"kind": "venv", "path": self.venv}
        if sys.prefix != sys.base_prefix:
            return {"kind": "venv", "path": sys.prefix}
        return {"kind": "none"}


_TOP = {f.name for f in fields(LocalConfig)} - {"slurm", "path", "warnings"}
_SLURM_KEYS = {f.name for f in fields(SlurmDefaults)}


def _set_slurm(cfg: LocalConfig, key: str, val: str, path: str, line: int) -> None:
    if key in ("cpus", "gpus", "max_submitted", "submit_stagger"):
        if not val:
            return
        if not val.isdigit():
            raise CkError(f"expected a whole number, got {val!r}", file=path, line=line, field=f"slurm_{key}")
        if key in MAX_SLURM and int(val) > MAX_SLURM[key]:
            raise CkError(f"{val} per node is not plausible (at most {MAX_SLURM[key]})", file=path, line=line,
                          field=f"slurm_{key}")
        setattr(cfg.slurm, key, int(val))
    elif key == "modules":
        cfg.slurm.modules = [m for m in re.split(r"[,\s]+", val) if m]
    elif key in ("time", "mem") and val and (problem := _sbatch_size_problem(key, val)):
        raise CkError(problem, file=path, line=line, field=f"slurm_{key}")
    elif key in _SBATCH_TEXT and val and (problem := field_problem(key, val)):
        # these become an #SBATCH option of every generated script (executors/resources.py)
        raise CkError(problem, file=path, line=line, field=f"slurm_{key}")
    else:
        setattr(cfg.slurm, key, val)


_SBATCH_TEXT = ("account", "partition", "qos", "constraint")


def _sbatch_size_problem(key: str, val: str) -> str | None:
    """--time / --mem as every generated script will read them (executors/resources.py)."""
    try:
        (parse_time_min if key == "time" else parse_mem_mb)(val)
    except ValueError as exc:
        return str(exc)
    return None


MAX_SLURM = {"gpus": 64, "cpus": 4096}  # per node: more is a typo (a node has at most a few dozen GPUs)


def parse_local_config(text: str, path: str = "claude.local.md") -> LocalConfig:
    cfg = LocalConfig(path=path)
    seen: dict[str, int] = {}  # key -> line: a second value for a key ck reads is refused, not a silent last-wins
    in_fence = False
    for no, raw in enumerate(text.splitlines(), 1):
        if raw.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence or raw.lstrip().startswith("#"):
            continue
        m = _LINE.match(raw)
        if not m:
            continue
        # "value   # comment": a comment needs whitespace before the '#'
        val = re.sub(r"(^|\s+)#.*$", "", m.group("val")).strip().strip("`").strip()
        key = m.group("key").lower()
        if re.search(r"[\x00-\x08\x0b-\x1f\x7f]", val):
            raise CkError("contains a control character (it would reach a job script)", file=path, line=no, field=key)
        if len(val) > 1024:
            raise CkError(f"value is {len(val)} characters long (at most 1024)", file=path, line=no, field=key)
        if len(val) >= 2 and val[0] == val[-1] and val[0] in "\"'":
            val = val[1:-1]
        if key in _TOP or (key.startswith("slurm_") and key[6:] in _SLURM_KEYS):
            if key in seen:
                raise CkError(f"{key} is set twice (first on line {seen[key]})", file=path, line=no, field=key,
                              hint="keep one line")
            seen[key] = no
        if key in _TOP:
            setattr(cfg, key, os.path.expanduser(val) if key.endswith(("_dir", "_base", "venv")) else val)
        elif key.startswith("slurm_") and key[6:] in _SLURM_KEYS:
            _set_slurm(cfg, key[6:], val, path, no)
        elif key.startswith("slurm_"):
            raise CkError(f"unknown SLURM setting {key!r}", file=path, line=no, field=key,
                          hint="known: " + ", ".join(f"slurm_{k}" for k in sorted(_SLURM_KEYS)))
    if cfg.conda_env and cfg.venv:
        raise CkError("set conda_env or venv, not both", file=path, field="conda_env")
    if cfg.venv and not (Path(cfg.venv) / "bin" / "activate").is_file():
        # generated scripts `source` it; a cluster path may exist only on the compute nodes: said, not refused
        cfg.warnings.append(f"{path}:{seen['venv']}: venv {cfg.venv} has no bin/activate here: jobs that "
                            "activate it will fail unless it exists where they run")
    return cfg


def find_local_config(*start_dirs: str | Path) -> Path | None:
    env = os.environ.get("CK_LOCAL_CONFIG")
    if env:
        return Path(env)
    candidates = [Path(d) / "claude.local.md" for d in start_dirs if d]
    candidates += [Path.cwd() / "claude.local.md", Path(__file__).resolve().parents[2] / "claude.local.md",
                   Path.home() / ".claude" / "claude.local.md"]
    for c in candidates:
        if c.is_file():
            return c
    return None


def load_local_config(path: str | Path | None = None, *, search: tuple = ()) -> LocalConfig:
    """Read claude.local.md; when there is none, defaults plus a warning (the local executor and the demo need none)."""
    p = Path(path) if path else find_local_config(*search)
    if p is None:
        cfg = LocalConfig()
        cfg.warnings.append("claude.local.md not found: using defaults (environment = the Python "
                            "running ck, outputs inside the experiment). `ck setup` writes one.")
        return cfg
    if not p.is_file():
        raise CkError("claude.local.md not found", file=p, hint="check CK_LOCAL_CONFIG / --config")
    from .state.yaml_input import read_user_text

    return parse_local_config(read_user_text(p, "claude.local.md", limit=256 * 1024), str(p))
