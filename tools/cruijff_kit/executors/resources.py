"""What a job asks the scheduler for, typed once: `Resources` (submitit's shape) and its one
translation to sbatch options (`sbatch_options`), which templates/partials/slurm.j2 renders as
the `#SBATCH` lines of every generated script.

    nodes, tasks_per_node, cpus_per_task, gpus_per_node   whole numbers (None / 0: not asked)
    mem_mb      memory per node in MB (submitit has mem_gb; MB keeps "500M" exact). Rendered
                "<n>G" when a whole number of GB, else "<n>M"
    time_min    time limit in minutes (submitit's timeout_min; SLURM's own resolution).
                Rendered "HH:MM:00", "D-HH:MM:00" from a day on
    partition, account, qos, constraint, job_name, output   text, held to a safe charset

Text from a plan or claude.local.md ("32G", "1-00:00:00") is converted once, by
`Resources.from_slurm`, and checked there: a value that could not be one option of one
`#SBATCH` line (a newline, a quote, a space, a semicolon) is refused with the setting's name.
The scaffold stores each job's Resources beside its script (state/layout.resources_path) and
everything after it (ck run, the local executor, measured throughput) reads them from there,
never back from the script's text.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from ..errors import CkError

# What each kind of text may hold. SLURM names (partitions, accounts, QOS) are letters, digits
# and - _ . ; a partition list is comma separated. Constraints add the feature operators.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.,:+@=/-]{0,255}")
_CONSTRAINT = re.compile(r"[A-Za-z0-9_.,:+@=/&|*()\[\]-]{1,256}")
_OUTPUT = re.compile(r"[A-Za-z0-9_.%+@=/-]{1,256}")
TEXT_FIELDS = {"job_name": _NAME, "partition": _NAME, "account": _NAME, "qos": _NAME,
               "constraint": _CONSTRAINT, "output": _OUTPUT}
INT_FIELDS = {"nodes": 10_000, "tasks_per_node": 4096, "cpus_per_task": 4096, "gpus_per_node": 64,
              "mem_mb": 1 << 40, "time_min": 366 * 24 * 60}

# sbatch's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S
_TIME = re.compile(r"^(?:(?P<d>\d+)-(?P<dh>\d{1,2})(?::(?P<dm>\d{1,2})(?::(?P<ds>\d{1,2}))?)?"
                   r"|(?P<a>\d+)(?::(?P<b>\d{1,2})(?::(?P<c>\d{1,2}))?)?)$")
_MEM = re.compile(r"^(?P<n>\d+)(?P<unit>[KMGT]?)B?$", re.I)
_MB_PER = {"K": 1 / 1024, "M": 1, "": 1, "G": 1024, "T": 1024 * 1024}


def parse_time_min(text: str) -> int:
    """A SLURM --time ("90", "1:30:00", "2-00:00:00") in whole minutes, seconds rounded up as
    SLURM rounds them. ValueError when it is not one of sbatch's formats."""
    m = _TIME.match(str(text).strip())
    if not m:
        raise ValueError(f"expected a SLURM time such as 01:00:00 or 1-00:00:00, got {str(text)[:40]!r}")
    g = {k: int(v) for k, v in m.groupdict().items() if v is not None}
    if "d" in g:
        seconds = g["d"] * 86400 + g["dh"] * 3600 + g.get("dm", 0) * 60 + g.get("ds", 0)
    elif "c" in g:  # H:M:S
        seconds = g["a"] * 3600 + g["b"] * 60 + g["c"]
    elif "b" in g:  # M:S
        seconds = g["a"] * 60 + g["b"]
    else:  # M
        seconds = g["a"] * 60
    return math.ceil(seconds / 60)


def format_time(minutes: int) -> str:
    days, rest = divmod(int(minutes), 24 * 60)
    text = f"{rest // 60:02d}:{rest % 60:02d}:00"
    return f"{days}-{text}" if days else text


def parse_mem_mb(text: str) -> int:
    """A SLURM --mem ("32G", "500M", "64000" = MB, "1T") in MB, rounded up. ValueError otherwise."""
    m = _MEM.match(str(text).strip())
    if not m:
        raise ValueError(f"expected a SLURM memory size such as 32G or 500M, got {str(text)[:40]!r}")
    return math.ceil(int(m.group("n")) * _MB_PER[m.group("unit").upper()])


def format_mem(mb: int) -> str:
    return f"{mb // 1024}G" if mb % 1024 == 0 else f"{mb}M"


def field_problem(name: str, value: Any) -> str | None:
    """What is wrong with one typed field's value (None: fine). Every caller that reads a
    resource from a user's file asks this, so the refusal can name that file and line."""
    if value is None:
        return None
    if name in INT_FIELDS:
        top = INT_FIELDS[name]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
            return f"expected a whole number 0..{top}, got {str(value)[:40]!r}"
        return None
    pattern = TEXT_FIELDS.get(name)
    if pattern is None:
        return f"unknown resource (known: {', '.join(f.name for f in fields(Resources))})"
    if not isinstance(value, str):
        return f"expected text, got {str(value)[:40]!r}"
    if re.search(r"[\x00-\x1f\x7f]", value):
        return "contains a newline or control character (it would become a line of the job script)"
    if not pattern.fullmatch(value):
        return (f"{value[:60]!r} has characters an #SBATCH option may not carry (spaces, quotes, ; $ ...); "
                "allowed: letters, digits and " + ("_ . , : + @ = / - & | * ( ) [ ]" if name == "constraint"
                                                    else "_ . , : + @ = / -" if name != "output" else "_ . % + @ = / -"))
    return None


@dataclass(frozen=True)
class Resources:
    """One job's scheduler request. Empty (None / 0) fields are not asked for."""

    job_name: str | None = None
    account: str | None = None
    partition: str | None = None
    qos: str | None = None
    constraint: str | None = None
    time_min: int | None = None
    nodes: int | None = None
    tasks_per_node: int | None = None
    cpus_per_task: int | None = None
    mem_mb: int | None = None
    gpus_per_node: int = 0
    output: str | None = "slurm-%j.out"

    def __post_init__(self) -> None:
        for f in fields(self):
            problem = field_problem(f.name, getattr(self, f.name))
            if problem:
                raise CkError(problem, field=f.name)

    def sbatch_options(self) -> list[tuple[str, str]]:
        return sbatch_options(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Resources":
        """The stored form (to_dict) back; CkError(field=...) for an unknown key or a bad value."""
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise CkError(f"unknown resource {str(key)[:40]!r}", field=str(key)[:40])
        return cls(**dict(data))

    @classmethod
    def from_slurm(cls, slurm: Mapping[str, Any], *, tasks_per_node: int | None = None,
                   file=None, line_of=None) -> "Resources":
        """From a plan's / claude.local.md's `slurm` mapping (job_name, account, partition, qos,
        constraint, time, mem, cpus, gpus, nodes, output; `modules` belong to the script, not
        here). Text is converted once; a bad value is refused naming `file`, the line
        `line_of(key)` gives and the field slurm.<key>."""
        s = dict(slurm or {})

        def fail(key: str, msg: str):
            raise CkError(msg, file=file, line=line_of(key) if line_of else None, field=f"slurm.{key}")

        def text(key: str) -> str | None:
            v = s.get(key)
            return v if v not in (None, "") else None

        values: dict[str, Any] = {}
        for key, name in (("time", "time_min"), ("mem", "mem_mb")):
            v = text(key)
            if v is not None:
                try:
                    values[name] = (parse_time_min if key == "time" else parse_mem_mb)(str(v))
                except ValueError as exc:
                    fail(key, str(exc))
        for key, name in (("job_name", "job_name"), ("account", "account"), ("partition", "partition"),
                          ("qos", "qos"), ("constraint", "constraint"), ("output", "output"),
                          ("cpus", "cpus_per_task"), ("nodes", "nodes"), ("gpus", "gpus_per_node")):
            v = text(key)
            if name in INT_FIELDS and not v:
                v = None  # 0 / None: not asked for
            problem = field_problem(name, v)
            if problem:
                fail(key, problem)
            if v is not None:
                values[name] = v
        values.setdefault("gpus_per_node", 0)
        values.setdefault("output", "slurm-%j.out")
        return cls(tasks_per_node=tasks_per_node or None, **values)


def sbatch_options(res: Resources) -> list[tuple[str, str]]:
    """(option, value) for every #SBATCH line of `res`, in the order scripts carry them. The
    one translation: templates/partials/slurm.j2 renders these and nothing else."""
    out: list[tuple[str, str]] = []
    for flag, value in (("job-name", res.job_name), ("account", res.account), ("partition", res.partition),
                        ("qos", res.qos), ("constraint", res.constraint),
                        ("time", format_time(res.time_min) if res.time_min else None),
                        ("nodes", res.nodes), ("ntasks-per-node", res.tasks_per_node),
                        ("cpus-per-task", res.cpus_per_task),
                        ("mem", format_mem(res.mem_mb) if res.mem_mb else None),
                        ("gres", f"gpu:{res.gpus_per_node}" if res.gpus_per_node else None),
                        ("output", res.output)):
        if value:
            out.append((flag, str(value)))
    return out
