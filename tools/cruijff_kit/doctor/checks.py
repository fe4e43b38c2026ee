"""The checks of `ck doctor`. Each returns Check objects and takes what it touches as parameters
(a Probe for commands and PATH, a version reader, paths), so a test can simulate a broken
environment without breaking the real one. Nothing here imports torch & co.: versions come
from package metadata."""
from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from .. import data_file
from ..errors import CkError
from ..localconfig import LocalConfig, find_local_config, load_local_config
from ..setup.probe import Probe
from ..util import procs
from ..state import layout
from ..util.wandb_key import wandb_api_key_present as _wandb_api_key_present

CONSTRAINTS = Path(str(data_file("_data", "constraints.txt")))
# The packages whose versions must agree for fine-tuning + evaluation to work together.
REQUIRED = ("torch", "torchtune", "torchao", "inspect-ai", "transformers", "accelerate")

VersionReader = Callable[[str], "str | None"]


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None
    info: bool = False  # passed, but worth reading (no SLURM, no GPU, offline W&B)

    def to_dict(self) -> dict:
        return asdict(self)


def installed_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path = CONSTRAINTS) -> dict[str, str]:
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s;#]+)", line)
        if m:
            pins[_norm(m.group(1))] = m.group(2)
    return pins


def _release(version: str) -> tuple[int, ...]:
    nums = []
    for part in version.split("+")[0].split("."):
        m = re.match(r"\d+", part)
        if not m:
            break
        nums.append(int(m.group()))
    return tuple(nums)


def _pip(spec: str) -> str:
    return f"{shlex.quote(sys.executable)} -m pip install {shlex.quote(spec)}"


def check_versions(version: VersionReader | None = None, constraints: Path = CONSTRAINTS) -> list[Check]:
    version = version or installed_version
    try:
        pins = read_pins(constraints)
    except OSError as exc:
        return [Check("versions", False, f"cannot read the pins: {exc}",
                      "run ck from its repository checkout (scripts/constraints.txt)")]
    checks = []
    for name in REQUIRED:
        pin = pins.get(_norm(name))
        have = version(name)
        label = f"version {name}"
        if pin is None:
            checks.append(Check(label, have is not None, f"{name} {have or 'not installed'} (not pinned)",
                                None if have else _pip(name)))
        elif have is None:
            checks.append(Check(label, False, f"{name} is not installed (pinned {pin})",
                                f"{_pip(f'{name}=={pin}')}  (or `make test`, which builds .venv from the pins)"))
        elif have.split("+")[0] == pin:
            checks.append(Check(label, True, f"{name} {have}"))
        elif name == "torchao" and _release(have)[:2] >= (0, 16):
            checks.append(Check(label, False,
                                f"torchao {have} is too new: torchtune {pins.get('torchtune', '0.6.1')} imports "
                                "APIs that torchao 0.16 removed (int4_weight_only, nf4tensor), so every "
                                "fine-tuning job fails at import",
                                _pip(f"torchao=={pin}")))
        else:
            checks.append(Check(label, False, f"{name} {have} is installed, {pin} is pinned "
                                              f"(scripts/constraints.txt: the versions known to work together)",
                                _pip(f"{name}=={pin}")))
    return checks


def _line_of(path: str | None, key: str) -> int | None:
    """Line of the last `key:` in claude.local.md (the parser keeps the last one)."""
    if not path:
        return None
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    pat = re.compile(rf"^\s*(?:[-*]\s+)?(?:\*\*)?{re.escape(key)}(?:\*\*)?\s*:", re.I)
    found = None
    for no, line in enumerate(lines, 1):
        if pat.match(line):
            found = no
    return found


def _where(cfg: LocalConfig, key: str) -> str:
    line = _line_of(cfg.path, key)
    return f"{cfg.path}:{line}" if line else str(cfg.path)


def load_config(config: str | Path | None, exp_dir: Path | None) -> tuple[Check, LocalConfig | None]:
    if config and not Path(config).expanduser().is_file():
        raise CkError("claude.local.md not found", file=config, field="--config",
                      hint="`ck setup --out PATH` writes one; omit --config to search the usual places")
    path = Path(config).expanduser() if config else find_local_config(*([exp_dir] if exp_dir else []))
    if path is None:
        # Not a failure: every key has a default that works on this machine (local executor,
        # the Python running ck, checkpoints inside the experiment). A cluster needs the file.
        return Check("claude.local.md", True, "none found ($CK_LOCAL_CONFIG, the experiment, the current "
                                              "directory, the repository, ~/.claude/claude.local.md): "
                                              "using the defaults (fine for local runs)",
                     "`ck setup` writes one from what it detects (SLURM account, partition, conda env, "
                     "output directory), or copy claude.local.md.example", info=True), None
    try:
        cfg = load_local_config(path)
    except CkError as err:
        return Check("claude.local.md", False, str(err).split("\n")[0],
                     err.hint or f"edit {err.location or path} (see claude.local.md.example), "
                                 "or rewrite it with `ck setup --force`"), None
    return Check("claude.local.md", True, f"{path} reads cleanly"), cfg


def _writable_dir(path: Path) -> bool:
    """The directory, or its nearest existing parent (jobs create the rest), is writable."""
    for p in (path, *path.parents):
        if p.exists():
            return p.is_dir() and os.access(p, os.W_OK | os.X_OK)
    return False


def check_config_values(cfg: LocalConfig, probe: Probe, partitions: dict[str, dict] | None) -> list[Check]:
    """What the file names must exist here; `partitions` is what sinfo reported (None: no SLURM)."""
    out = []
    if cfg.venv:
        py = Path(cfg.venv) / "bin" / "python"
        if not py.exists():
            out.append(Check("config venv", False, f"{_where(cfg, 'venv')}: {py} does not exist",
                             "point venv at a virtualenv directory (the one holding bin/python), or unset it"))
    if cfg.conda_env:
        conda = probe.which("conda")
        if conda is None:
            out.append(Check("config conda_env", True, f"conda_env {cfg.conda_env}: conda is not on PATH here "
                             "(jobs load it through slurm_modules)", info=True))
        else:
            envs, problem = procs.conda_envs(conda, run=probe.run)
            names = set(envs)
            if problem is None and cfg.conda_env not in names | {"base"}:
                out.append(Check("config conda_env", False,
                                 f"{_where(cfg, 'conda_env')}: conda has no environment {cfg.conda_env!r}",
                                 f"create it (`conda create -n {shlex.quote(cfg.conda_env)} python=3.11`) "
                                 f"or pick one of: {', '.join(sorted(names)) or '-'}"))
    for key in ("output_dir_base", "scratch_dir"):
        value = getattr(cfg, key)
        if value and not _writable_dir(Path(value)):
            out.append(Check(f"config {key}", False, f"{_where(cfg, key)}: {value} is not writable here",
                             f"choose a directory you can write, e.g. under $SCRATCH, or unset {key}"))
    if partitions is not None and cfg.slurm.partition:
        part = partitions.get(cfg.slurm.partition)
        if part is None:
            out.append(Check("config slurm_partition", False,
                             f"{_where(cfg, 'slurm_partition')}: partition {cfg.slurm.partition!r} does not "
                             f"exist (sinfo: {', '.join(partitions) or 'none'})",
                             "set slurm_partition to one sinfo lists, or leave it empty for the default"))
        else:
            if part.get("cpus") and cfg.slurm.cpus > part["cpus"]:
                out.append(Check("config slurm_cpus", False,
                                 f"{_where(cfg, 'slurm_cpus')}: {cfg.slurm.cpus} CPUs, but the largest node of "
                                 f"{cfg.slurm.partition} has {part['cpus']}: jobs would never start",
                                 f"slurm_cpus: {part['cpus']} or fewer"))
            mem_mb = _mem_mb(cfg.slurm.mem)
            if part.get("mem_mb") and mem_mb and mem_mb > part["mem_mb"]:
                out.append(Check("config slurm_mem", False,
                                 f"{_where(cfg, 'slurm_mem')}: --mem {cfg.slurm.mem}, but the largest node of "
                                 f"{cfg.slurm.partition} has {part['mem_mb']} MB: jobs would never start",
                                 f"slurm_mem: {part['mem_mb'] // 1024}G or less"))
    return out


def _mem_mb(text: str) -> int | None:
    m = re.fullmatch(r"(\d+)([KMGT]?)", text.strip(), re.I)
    if not m:
        return None
    scale = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}[m.group(2).upper()]
    return int(int(m.group(1)) * scale)


SACCT_FIX = ("ck run asks sacct how each job ended: install SLURM's client tools and enable job "
             "accounting (slurmdbd running, AccountingStorageType=accounting_storage/slurmdbd in "
             "slurm.conf); ask your cluster admins, or on the local test cluster: scripts/local-slurm start")


def check_slurm(probe: Probe) -> tuple[list[Check], dict[str, dict] | None]:
    """SLURM reachable and sacct working. Returns the partitions (None when there is no SLURM)."""
    if probe.which("sbatch") is None:
        return [Check("slurm", True, "no SLURM (no sbatch on PATH): the local executor will be used",
                      info=True)], None
    from ..setup.detect import SINFO_FORMAT, parse_sinfo

    res = probe.run(["sinfo", "-h", "-o", SINFO_FORMAT])
    if not res.ok or not res.out.strip():
        if os.environ.get("CK_EXECUTOR", "").strip() == "local":
            # the researcher chose to run here: a cluster they do not use is not a failure
            return [Check("slurm", True, f"sbatch exists but sinfo does not answer ({res.why()}); "
                                         "CK_EXECUTOR=local, so runs do not need it", info=True)], None
        return [Check("slurm", False, f"sbatch exists but sinfo does not answer: {res.why()}",
                      "is slurmctld reachable? try `scontrol ping` and check SLURM_CONF; on the local "
                      "test cluster: scripts/local-slurm start; or run here with CK_EXECUTOR=local")], None
    parts = parse_sinfo(res.out)
    partitions = {p.name: {"cpus": p.cpus, "mem_mb": p.mem_mb, "default": p.default} for p in parts}
    names = ", ".join(p.name + ("*" if p.default else "") for p in parts)
    checks = [Check("slurm", True, f"sinfo answers; partitions: {names}")]
    if probe.which("sacct") is None:
        checks.append(Check("sacct", False, "sbatch exists but sacct does not (no job accounting)", SACCT_FIX))
    else:
        res = probe.run(["sacct", "-n", "-X", "-S", "now-1minutes", "-o", "JobID"])
        if res.ok:
            checks.append(Check("sacct", True, "sacct answers (job accounting works)"))
        else:
            checks.append(Check("sacct", False, f"sacct fails: {res.why()}", SACCT_FIX))
    return checks, partitions


def check_gpus(probe: Probe, version: VersionReader | None = None) -> Check:
    version = version or installed_version
    q = procs.query_gpus(("index", "name", "memory.total"), run=probe.run, which=probe.which)
    if q.missing:
        return Check("gpus", True, "no nvidia-smi: CPU only here (fine for the demo; on a cluster GPUs are "
                                   "on the compute nodes)", info=True)
    if not q.ok:
        return Check("gpus", False, f"nvidia-smi fails: {q.reason.split(': ', 1)[-1]}",
                     "the NVIDIA driver is not loaded or does not match; run `nvidia-smi` by hand "
                     "(on a cluster: `srun --gres=gpu:1 nvidia-smi` on a compute node)")
    gpus = [", ".join(row) for row in q.rows]
    if not gpus:
        return Check("gpus", True, "nvidia-smi lists no GPUs: CPU only here", info=True)
    torch = version("torch") or ""
    if "+cpu" in torch:
        return Check("gpus", True, f"{len(gpus)} GPU(s): {'; '.join(gpus)} — but torch {torch} is a CPU "
                                   "build, so jobs from this environment will not use them",
                     f"where jobs should use them: a CUDA build of torch {torch.split('+')[0]} "
                     f"({shlex.quote(sys.executable)} -m pip install torch=={torch.split('+')[0]} "
                     "--index-url https://download.pytorch.org/whl/cuXYZ, XYZ matching the driver)", info=True)
    return Check("gpus", True, f"{len(gpus)} GPU(s): {'; '.join(gpus)}")


def _resolve(path: str, exp_dir: Path) -> Path:
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    return next((c for c in (exp_dir / p, Path.cwd() / p) if c.exists()), exp_dir / p)


def _readable(p: Path) -> str | None:
    """Why `p` cannot be read, or None."""
    if not p.exists():
        return "does not exist"
    if p.is_dir():
        if not os.access(p, os.R_OK | os.X_OK):
            return "is not readable (permissions)"
    elif not os.access(p, os.R_OK):
        return "is not readable (permissions)"
    return None


def check_experiment(exp_dir: Path) -> list[Check]:
    """Model and dataset paths of an experiment, as the jobs will read them."""
    from ..experiment.parse import load_experiment

    summary = exp_dir / layout.SUMMARY
    if not summary.is_file():
        raise CkError("no experiment_summary.md here", file=exp_dir,
                      hint="pass an experiment directory (`ck design` writes one), or omit DIR")
    exp = load_experiment(summary)
    out = []
    for name, raw in exp.models:
        p = _resolve(raw, exp_dir)
        why = _readable(p)
        if why is None and p.is_dir() and not (p / "config.json").exists():
            why = "has no config.json (not a Hugging Face model directory)"
        if why is None and p.is_dir():
            from ..finetune.trainers import layout_problems  # tokenizer files, family, prompt format

            why = "; ".join(layout_problems(p, name)) or None
        out.append(Check(f"model {name}", why is None, f"{p} {why or 'is readable'}",
                         f"correct model {name}'s path ({raw}) under Resources in {summary}, or put the "
                         "model's files there (jobs read it as written)" if why else None))
    if exp.dataset:
        p = _resolve(exp.dataset, exp_dir)
        why = _readable(p)
        out.append(Check("dataset", why is None, f"{p} {why or 'is readable'}",
                         f"correct the dataset path ({exp.dataset}) under Resources in {summary}, or put "
                         "the file there" if why else None))
    else:
        out.append(Check("dataset", False, "the plan names no dataset", f"add one to {summary} (Resources)"))
    return out


def check_wandb(cfg: LocalConfig | None, version: VersionReader | None = None) -> Check:
    # Never read out the key itself: only whether one is available.

    version = version or installed_version
    project = cfg.my_wandb_project if cfg else ""
    mode = (os.environ.get("WANDB_MODE") or "").lower()
    if project and version("wandb") is None:
        return Check("wandb", False, f"my_wandb_project is {project!r} but wandb is not installed",
                     _pip("wandb"))
    if mode in ("offline", "disabled", "dryrun"):
        return Check("wandb", True, f"WANDB_MODE={mode}: runs log locally", info=True)
    if _wandb_api_key_present():
        return Check("wandb", True, "logged in (an API key is available; not shown)")
    if mode == "online":
        return Check("wandb", False, "WANDB_MODE=online but no API key (WANDB_API_KEY or ~/.netrc)",
                     "`wandb login`, or unset WANDB_MODE so jobs log offline")
    return Check("wandb", True, "not logged in: generated jobs log offline (sync later with `wandb sync`)",
                 "`wandb login` to log online" if project else None, info=True)


def run_checks(exp_dir: str | Path | None = None, config: str | Path | None = None, *,
               probe: Probe | None = None, version: VersionReader | None = None) -> list[Check]:
    probe = probe or Probe()
    exp = Path(exp_dir).expanduser().resolve() if exp_dir else None
    checks = []
    if exp is not None:
        exp_checks = check_experiment(exp)  # bad DIR is bad input: raise before anything else
    checks += check_versions(version)
    slurm_checks, partitions = check_slurm(probe)
    cfg_check, cfg = load_config(config, exp)
    checks.append(cfg_check)
    if cfg is not None:
        checks += check_config_values(cfg, probe, partitions)
    checks += slurm_checks
    checks.append(check_gpus(probe, version))
    if exp is not None:
        checks += exp_checks
        from .prompt_identity import check_prompt_identity  # reads .eval logs: only with an experiment

        checks += check_prompt_identity(exp)
    checks.append(check_wandb(cfg, version))
    return checks
