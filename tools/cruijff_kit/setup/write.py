"""Detected facts -> claude.local.md values; ask only for what detection could not settle."""
from __future__ import annotations

import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import CkError
from ..localconfig import DEFAULT_MEM, SlurmDefaults, parse_local_config
from .detect import Detected, Partition, detect
from .probe import Probe

TEMPLATE = "claude.local.md.j2"
KEYS = ("conda_env", "venv", "output_dir_base", "my_wandb_project", "scratch_dir",
        "slurm_account", "slurm_partition", "slurm_qos", "slurm_constraint", "slurm_time", "slurm_mem",
        "slurm_cpus", "slurm_gpus", "slurm_modules")
_DEFAULTS = SlurmDefaults()


@dataclass
class Question:
    key: str
    prompt: str
    default: str = ""
    choices: list[str] = field(default_factory=list)


@dataclass
class SetupResult:
    path: str
    values: dict[str, str]
    asked: list[str]
    detected: Detected
    text: str = ""
    # questions nobody answered (--yes / no terminal): their defaults were written
    defaulted: list[Question] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"path": str(Path(self.path).resolve()), "written": True, "values": self.values,
                "asked": self.asked, "defaulted": [asdict(q) for q in self.defaulted],
                "detected": self.detected.to_dict(), "notes": self.detected.notes}


def _minutes(limit: str) -> int | None:
    """sinfo's %l ('infinite', '30:00', '4:00:00', '2-00:00:00') in whole minutes; None = no limit."""
    m = re.fullmatch(r"(?:(\d+)-)?([\d:]+)", limit.strip())
    if not m:
        return None
    days = int(m.group(1) or 0)
    nums = [int(x) for x in m.group(2).split(":") if x] + [0, 0]
    if len(m.group(2).split(":")) == 3:
        h, mins, s = nums[:3]
    elif m.group(1):   # D-HH[:MM]
        h, mins, s = nums[0], nums[1], 0
    else:              # MM[:SS]
        h, mins, s = 0, nums[0], nums[1]
    return days * 1440 + h * 60 + mins + (1 if s else 0)


def _slurm_sizes(part: Partition | None) -> dict[str, str]:
    """--time and --mem stay unset (each run's scaffold derives them from its estimate and its
    model's size: an 8B run needs more than a 1B one) unless the default partition cannot give
    the fallback defaults; then its limit is written, so no job asks for more than it can get.
    --cpus-per-task: the default, shrunk to the partition's largest node."""
    time, mem, cpus = "", "", _DEFAULTS.cpus
    if part is not None:
        limit = _minutes(part.timelimit)
        if limit is not None and limit < 60:
            time = f"00:{limit:02d}:00"
        wanted_mb = int(DEFAULT_MEM[:-1]) * 1024
        if part.mem_mb and part.mem_mb < wanted_mb:
            mem = f"{part.mem_mb // 1024}G" if part.mem_mb >= 1024 else f"{part.mem_mb}M"
        if part.cpus and part.cpus < cpus:
            cpus = part.cpus
    return {"slurm_time": time, "slurm_mem": mem, "slurm_cpus": str(cpus)}


def propose(det: Detected) -> tuple[dict[str, str], list[Question]]:
    """Values detection settles, and questions for the rest (each with a default)."""
    v = dict.fromkeys(KEYS, "")
    qs: list[Question] = []

    if det.conda_active:
        v["conda_env"] = det.conda_active
    elif det.venv:
        v["venv"] = det.venv
    elif det.conda_envs:
        names = sorted(n for n in det.conda_envs if n != "base") or ["base"]
        qs.append(Question("conda_env", "conda environment the jobs activate (empty: the Python running ck)",
                           names[0] if len(names) == 1 else "", names))

    if det.scratch_dirs:
        v["scratch_dir"] = det.scratch_dirs[0]
        v["output_dir_base"] = str(Path(det.scratch_dirs[0]) / "ck-outputs")
    else:
        qs.append(Question("output_dir_base", "where checkpoints go, BASE/EXPERIMENT/RUN/epoch_N "
                                              "(empty: inside each experiment)"))

    if det.wandb_project:
        v["my_wandb_project"] = det.wandb_project
    else:
        qs.append(Question("my_wandb_project", "W&B project for runs (empty: no W&B)"))

    if det.slurm:
        part = det.default_partition
        if part is not None:
            v["slurm_partition"] = part.name
        elif det.partitions:
            names = [p.name for p in det.partitions]
            qs.append(Question("slurm_partition", "SLURM partition", names[0], names))
        if det.default_account:
            v["slurm_account"] = det.default_account
        elif len(det.accounts) == 1:
            v["slurm_account"] = det.accounts[0]
        else:
            qs.append(Question("slurm_account", "SLURM account (--account; empty: the cluster's default)",
                               det.accounts[0] if det.accounts else "", list(det.accounts)))
        v.update(_slurm_sizes(part))
        v["slurm_modules"] = ", ".join(det.modules)
    else:
        v.update(_slurm_sizes(None))
    return v, qs


def ask_stdin(q: Question) -> str:
    """One question on stderr (stdout stays clean for --json); Enter takes the default."""
    if q.choices:
        for i, c in enumerate(q.choices, 1):
            print(f"  {i}) {c}", file=sys.stderr)
    shown = f" [{q.default}]" if q.default else ""
    print(f"{q.prompt}{shown}: ", end="", file=sys.stderr, flush=True)
    line = sys.stdin.readline()
    if not line:  # EOF: nobody is there to answer
        return q.default
    answer = line.strip()
    if answer.isdigit() and q.choices and 1 <= int(answer) <= len(q.choices):
        return q.choices[int(answer) - 1]
    return answer or q.default


def _checked(key: str, value: str) -> str:
    # claude.local.md has no escaping: a '#' after whitespace starts a comment, a newline ends
    # the value, and matching outer quotes are stripped. Refuse what would not read back.
    value = str(value).strip()
    if "\n" in value or re.search(r"(^|\s)#", value) or (len(value) >= 2 and value[0] == value[-1]
                                                          and value[0] in "\"'`"):
        raise CkError(f"value {value!r} cannot be written to claude.local.md", field=key,
                      hint="no newlines, no ' #', no surrounding quotes")
    return value


def render_text(values: dict[str, str], det: Detected) -> str:
    from ..templating import render

    v = {k: _checked(k, values.get(k, "")) for k in KEYS}
    return render(TEMPLATE, v=v, det=det)


def _verify(text: str, values: dict[str, str], path: str) -> None:
    """The written file must read back as exactly what was chosen (parser and template agree)."""
    cfg = parse_local_config(text, path)
    got = {k: getattr(cfg, k) for k in ("conda_env", "venv", "output_dir_base", "my_wandb_project",
                                        "scratch_dir")}
    got.update({f"slurm_{k}": getattr(cfg.slurm, k) for k in ("account", "partition", "constraint",
                                                               "time", "mem")})
    want = {k: values[k] for k in got}
    for k in ("output_dir_base", "scratch_dir", "venv"):
        want[k] = str(Path(want[k]).expanduser()) if want[k] else ""
    if values["slurm_cpus"]:
        got["slurm_cpus"], want["slurm_cpus"] = str(cfg.slurm.cpus), values["slurm_cpus"]
    if got != want:
        diff = {k: (want[k], got[k]) for k in got if got[k] != want[k]}
        raise CkError(f"rendered claude.local.md does not read back as written: {diff}", file=path)


def parse_sets(items: list[str] | None) -> dict[str, str]:
    """--set KEY=VALUE (repeatable): answers given up front, e.g. by an agent that asked the user."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in KEYS:
            raise CkError(f"expected KEY=VALUE with KEY one of {', '.join(KEYS)}, got {item!r}", field="--set")
        out[key] = value.strip()
    return out


def setup(out: str | Path, *, force: bool = False, interactive: bool = False,
          ask: Callable[[Question], str] = ask_stdin, probe: Probe | None = None,
          detected: Detected | None = None, overrides: dict[str, str] | None = None) -> SetupResult:
    from ..util.fs import atomic_write_text

    overrides = overrides or {}
    path = Path(out).expanduser()
    if path.is_dir():
        path = path / "claude.local.md"
    if path.exists() and not force:
        raise CkError("already exists; not overwritten", file=path,
                      hint="`ck setup --force` replaces it (or --out elsewhere); `ck doctor` checks it as is")
    det = detected or detect(probe)
    values, questions = propose(det)
    asked, defaulted = [], []
    for q in questions:
        if q.key in overrides:
            continue
        if interactive:
            values[q.key] = ask(q)
            asked.append(q.key)
        else:
            values[q.key] = q.default
            defaulted.append(q)
    values.update(overrides)
    if values["conda_env"] and values["venv"]:
        # --set conda_env=… replaces a detected venv (and the other way round): one of them only
        drop = "venv" if "conda_env" in overrides else "conda_env"
        values[drop] = ""
    values = {k: _checked(k, v) for k, v in values.items()}
    text = render_text(values, det)
    _verify(text, values, str(path))
    atomic_write_text(path, text)
    return SetupResult(str(path), values, asked, det, text, defaulted)
