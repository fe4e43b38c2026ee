"""What `ck setup` can learn without asking: every probe is best-effort, and what it could not
learn is recorded (notes) instead of failing, because setup must work on a laptop too."""
from __future__ import annotations

import getpass
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..util import procs
from .probe import Probe

# one line per node group: partition (default marked *), time limit, gres, CPUs, memory (MB)
SINFO_FORMAT = "%P|%l|%G|%c|%m"


@dataclass
class Partition:
    name: str
    default: bool = False
    timelimit: str = ""          # sinfo %l: "infinite", "1-00:00:00", "4:00:00" …
    gres: list[str] = field(default_factory=list)
    cpus: int | None = None      # largest node of the partition
    mem_mb: int | None = None


@dataclass
class Detected:
    user: str = ""
    slurm: bool = False
    partitions: list[Partition] = field(default_factory=list)
    accounts: list[str] = field(default_factory=list)
    default_account: str = ""
    gpu_types: list[str] = field(default_factory=list)   # from gres, e.g. a100
    conda_envs: dict[str, str] = field(default_factory=dict)
    conda_active: str = ""        # the active env when it is the one running ck
    venv: str = ""                # sys.prefix when ck runs inside a virtualenv
    gpus: list[str] = field(default_factory=list)        # nvidia-smi names on this machine
    scratch_dirs: list[str] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)
    wandb_project: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def default_partition(self) -> Partition | None:
        for p in self.partitions:
            if p.default:
                return p
        return self.partitions[0] if len(self.partitions) == 1 else None

    def partition(self, name: str) -> Partition | None:
        return next((p for p in self.partitions if p.name == name), None)

    def to_dict(self) -> dict:
        return asdict(self)


def current_user() -> str:
    # $USER is unset in some containers and batch shells; getpass falls back to the uid.
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        return ""


def _int(text: str) -> int | None:
    digits = re.match(r"\d+", text.strip())
    return int(digits.group()) if digits else None


def gpu_types_of(gres: str) -> list[str]:
    """'gpu:a100:4(S:0-1),shard:8' -> ['a100']; 'gpu:2' has no type."""
    types = []
    for item in gres.split(","):
        parts = item.split("(")[0].strip().split(":")
        if parts[0] == "gpu" and len(parts) >= 3 and parts[1]:
            types.append(parts[1])
        elif parts[0] == "gpu" and len(parts) == 2 and parts[1] and not parts[1].isdigit():
            types.append(parts[1])
    return types


def parse_sinfo(text: str) -> list[Partition]:
    """Lines of `sinfo -h -o SINFO_FORMAT`; one line per node group, merged per partition."""
    parts: dict[str, Partition] = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if not fields or not fields[0]:
            continue
        fields += [""] * (5 - len(fields))
        raw, limit, gres, cpus, mem = fields[:5]
        name = raw.rstrip("*")
        p = parts.setdefault(name, Partition(name))
        p.default = p.default or raw.endswith("*")
        p.timelimit = p.timelimit or limit.strip()
        for g in gres.split(","):
            g = g.strip()
            if g and g != "(null)" and g not in p.gres:
                p.gres.append(g)
        for attr, value in (("cpus", _int(cpus)), ("mem_mb", _int(mem))):
            if value is not None and (getattr(p, attr) is None or value > getattr(p, attr)):
                setattr(p, attr, value)
    return list(parts.values())


def _slurm(det: Detected, probe: Probe) -> None:
    if probe.which("sbatch") is None:
        det.notes.append("no sbatch on PATH: no SLURM here, jobs will use the local executor")
        return
    res = probe.run(["sinfo", "-h", "-o", SINFO_FORMAT])
    if not res.ok:
        det.notes.append(f"sbatch exists but sinfo failed: {res.why()}")
        return
    det.slurm = True
    det.partitions = parse_sinfo(res.out)
    for p in det.partitions:
        for g in p.gres:
            for t in gpu_types_of(g):
                if t not in det.gpu_types:
                    det.gpu_types.append(t)
    if probe.which("sacctmgr") is None:
        det.notes.append("no sacctmgr: SLURM account not detected")
        return
    user = det.user or current_user()
    res = probe.run(["sacctmgr", "-nP", "show", "assoc", f"user={user}", "format=account"])
    if res.ok:
        for acc in res.out.split():
            if acc not in det.accounts:
                det.accounts.append(acc)
    else:
        det.notes.append(f"sacctmgr failed ({res.why()}): SLURM account not detected")
        return
    res = probe.run(["sacctmgr", "-nP", "show", "user", user, "format=defaultaccount"])
    if res.ok and res.out.strip():
        det.default_account = res.out.split()[0]


def _python_env(det: Detected, probe: Probe, prefix: str, base_prefix: str) -> None:
    active = os.environ.get("CONDA_DEFAULT_ENV", "")
    if active and active != "base" and os.environ.get("CONDA_PREFIX") == prefix:
        det.conda_active = active
    elif prefix != base_prefix:
        det.venv = prefix
    conda = procs.conda_exe(probe.which)
    if conda is None:
        return
    envs, problem = procs.conda_envs(conda, run=probe.run)
    if problem:
        det.notes.append(problem)
    det.conda_envs.update(envs)


def _gpus(det: Detected, probe: Probe) -> None:
    q = procs.query_gpus(("name",), run=probe.run, which=probe.which)
    if q.ok:
        det.gpus = [",".join(row) for row in q.rows]
    elif q.found:
        det.notes.append(f"nvidia-smi failed: {q.reason.split(': ', 1)[-1]}")


def scratch_candidates(user: str, environ=None) -> list[Path]:
    env = os.environ if environ is None else environ
    cands = [Path(env["SCRATCH"]).expanduser()] if env.get("SCRATCH") else []
    if user:
        cands += [Path("/scratch/gpfs") / user, Path("/scratch") / user]
    return cands


def detect(probe: Probe | None = None, *, scratch: list[Path] | None = None,
           prefix: str | None = None, base_prefix: str | None = None) -> Detected:
    """Everything setup can detect. `scratch` replaces the candidate scratch directories (tests)."""
    probe = probe or Probe()
    det = Detected(user=current_user())
    _slurm(det, probe)
    _python_env(det, probe, prefix or sys.prefix, base_prefix or sys.base_prefix)
    _gpus(det, probe)
    for cand in scratch if scratch is not None else scratch_candidates(det.user):
        if cand.is_dir() and os.access(cand, os.W_OK) and str(cand) not in det.scratch_dirs:
            det.scratch_dirs.append(str(cand))
    # Modules loaded in this shell are the best guess for what jobs must load too.
    det.modules = [m for m in os.environ.get("LOADEDMODULES", "").split(":") if m]
    det.wandb_project = os.environ.get("WANDB_PROJECT", "")
    return det
