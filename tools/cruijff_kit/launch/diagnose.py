"""Name why a run failed, from its log and exit code, with a concrete fix.

Order of evidence: a stop the user asked for, the final exception of the last Python traceback
(the real cause) or the error line a command-line parser refused the command with, then a signal death (exit 128+N, or a supervisor that vanished without recording
an exit code), then the losses (the first NaN or divergence, see losses.py: printed, not raised),
then the last line anywhere in the log matching a known failure (failures.py: the catalogue); a run
that exits 0 within a minute without one progress line is `no_progress`. Advice names the repo's own
switches (its flag form, its Hydra override) where detect finds them, the install command a library
recommends, the service behind a refused port, the pin that restores a removed API.
"""
from __future__ import annotations

import difflib
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

from ..util import procs
from . import detect, entry_points, failures, losses, process, state, wandb_runs
from ..util.formats import size_binary

_MAX_LOG_BYTES = 4 * 2**20  # the end of a log holds the failure; do not read GBs of progress bars

_TRIED = re.compile(r"Tried to allocate ([\d.]+ ?[KMGT]i?B)")
_CPU_TRIED = re.compile(r"you tried to allocate (\d+) bytes")
_MISSING_PATH = re.compile(r"No such file or directory:?\s*['\"]([^'\"]+)['\"]|can't open file ['\"]([^'\"]+)['\"]")


def _log_lines(text: str) -> list[tuple[int, str]]:
    # The wrapper's own "[ck launch]" lines echo the command, which may contain words like "nan".
    return [(i, line.rstrip()) for i, line in enumerate(text.splitlines(), 1)
            if not line.startswith("[ck launch]")]


def final_exception(lines: list[tuple[int, str]]) -> tuple[int, str] | None:
    """The last traceback's exception line, or the command-line parser's error line when that came later."""
    exc = failures.final_exception(lines)
    cli = failures.cli_error(lines)
    if exc and cli:
        return exc if exc[0] >= cli[0] else cli
    return exc or cli


def classify_line(line: str, text: str = "") -> str | None:
    return failures.classify(line, text)


def _flag_value(command: str, *names: str) -> tuple[str, str] | None:
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    for i, word in enumerate(words):
        for name in names:
            if word == name and i + 1 < len(words):
                return name, words[i + 1]
            if word.startswith(name + "="):
                return name, word.split("=", 1)[1]
    return None


_LR_NAMES = ("lr", "learning_rate", "learning-rate", "base_lr", "max_lr", "lr0")


def _repo_flag(info: dict[str, Any] | None, dests: tuple[str, ...]) -> dict[str, Any] | None:
    for flag in (info or {}).get("args", []):
        if flag.get("dest") in dests and not flag.get("positional"):
            return flag
    return None


def _lr_hint(command: str, info: dict[str, Any] | None) -> str:
    """'lower the learning rate (--learning_rate=6e-05, a tenth of 0.0006)': in the form the repo's own
    parser accepts (argparse `--lr X`, configurator `--key=value`, Hydra `group.key=value`)."""
    flag = _repo_flag(info, _LR_NAMES)
    if flag is not None:
        given = _flag_value(command, *flag["flags"])
        value = given[1] if given else flag.get("default")
        try:
            return f"lower the learning rate ({entry_points.flag_text(flag, f'{float(value) / 10:g}')}, a tenth of {value})"
        except (TypeError, ValueError):
            return f"lower the learning rate ({entry_points.flag_text(flag, 'SMALLER')})"
    hydra = (info or {}).get("hydra")
    if hydra and hydra.get("config_dir"):
        root = Path(info["repo"]) / hydra["config_dir"]
        for group, option in hydra.get("defaults", {}).items():
            if not isinstance(option, str):
                continue
            data = entry_points.read_yaml(root / group / f"{option}.yaml")
            path = entry_points.find_key_path(data, "lr")
            value = data
            for key in path or ():
                value = value.get(key) if isinstance(value, dict) else None
            if path and isinstance(value, (int, float)):
                return (f"lower the learning rate (Hydra override {group}.{'.'.join(path)}={value / 10:g}, "
                        f"a tenth of {value})")
    lr = _flag_value(command, "--lr", "--learning_rate", "--learning-rate")
    try:
        if lr:
            return f"lower the learning rate ({lr[0]} {float(lr[1]) / 10:g}, a tenth of {lr[1]})"
    except ValueError:
        pass
    return "lower the learning rate"


def _cpu_switch(info: dict[str, Any] | None) -> str:
    """The repo's own way to run on CPU."""
    hydra = (info or {}).get("hydra") or {}
    if "cpu" in hydra.get("groups", {}).get("trainer", []):
        return "the Hydra override trainer=cpu"
    for dests in (("device",), ("accelerator",)):
        flag = _repo_flag(info, dests)
        if flag is not None:
            return entry_points.flag_text(flag, "cpu")
    return "accelerator='cpu' (Lightning Trainer) or device 'cpu' in the code, and --gpus cpu"


_BATCH_NAMES = ("batch_size", "batch-size", "bs", "per_device_train_batch_size", "train_batch_size",
                "micro_batch_size", "batch")
_WORKER_NAMES = ("num_workers", "workers", "num-workers", "n_workers", "dataloader_num_workers", "j")
_ACCUM_NAMES = ("gradient_accumulation_steps", "grad_accum", "accumulate_grad_batches", "accum_iter",
                "gradient_accumulation", "accumulation_steps")


def _knob(info: dict[str, Any] | None, command: str, names: tuple[str, ...], change) -> str | None:
    """A repo switch (its own flag form) with a new value: `--batch-size 16` for a given 32."""
    flag = _repo_flag(info, tuple(n.replace("-", "_") for n in names))
    forms = flag["flags"] if flag else ["--" + n for n in names] + ["-" + n for n in names if len(n) == 1]
    given = _flag_value(command, *forms)
    value = given[1] if given else (flag or {}).get("default")
    try:
        new = change(int(float(value)))
    except (TypeError, ValueError):
        new = None
    if flag is not None:
        return entry_points.flag_text(flag, new if new is not None else "SMALLER")
    if given and new is not None:
        return f"{given[0]} {new}"
    return None


def _memory_knobs(info: dict[str, Any] | None, command: str, host: bool) -> list[str]:
    batch = _knob(info, command, _BATCH_NAMES, lambda v: max(v // 2, 1))
    accum = _knob(info, command, _ACCUM_NAMES, lambda v: v * 2)
    hint = [f"halve the batch size ({batch})" if batch else "lower the batch size",
            f"double gradient accumulation ({accum}) to keep the effective batch" if accum
            else "raise gradient accumulation to keep the effective batch"]
    if host:
        workers = _knob(info, command, _WORKER_NAMES, lambda v: max(v // 2, 0))
        hint += [f"fewer dataloader workers ({workers})" if workers else "fewer dataloader workers (each holds a copy)",
                 "do not load the whole dataset into RAM (stream or memory-map it)",
                 "ask for more memory (SLURM --mem) or run where more RAM is free"]
    else:
        hint += ["enable gradient checkpointing", "train in bf16/fp16 mixed precision",
                 "pick a GPU with more free memory (`ck launch gpus --json`)",
                 "set PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True if memory is fragmented"]
    return hint


def _pip_command(meta: dict[str, Any], packages: str) -> str:
    env = meta.get("environment", {})
    if env.get("kind") == "conda":
        return f"conda run -n {shlex.quote(env['name'])} python -m pip install {packages}"
    if env.get("kind") in ("uv", "poetry"):
        return f"{env['kind']} add {packages}"
    if env.get("interpreter") or env.get("name"):
        py = env.get("interpreter") or (env["name"] if env.get("kind") == "interpreter" else env["name"] + "/bin/python")
        return f"{shlex.quote(py)} -m pip install {packages}"
    return f"python -m pip install {packages}"


def _env_python(meta: dict[str, Any]) -> str | None:
    env = meta.get("environment", {})
    if env.get("interpreter"):
        return env["interpreter"]
    if env.get("kind") == "interpreter":
        return env.get("name")
    if env.get("kind") == "venv" and env.get("name"):
        return str(Path(env["name"]) / "bin" / "python")
    return None


def installed_version(dist: str, text: str, meta: dict[str, Any]) -> str | None:
    """The version of `dist` the run used: from the site-packages its traceback runs through, else asked of
    the run's own interpreter (never ck's)."""
    norm = re.sub(r"[-_.]+", "_", dist).lower()
    for site in dict.fromkeys(re.findall(r"(/\S+?/site-packages)/", text)):
        for info in Path(site).glob("*.dist-info"):
            name, _, version = info.name[:-len(".dist-info")].partition("-")
            if re.sub(r"[-_.]+", "_", name).lower() == norm:
                return version
    python = _env_python(meta)
    if python and Path(python).exists():
        try:
            proc = subprocess.run([python, "-c", "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))",
                                   dist], capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            return None
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
    return None


def _advise_bad_args(error: str, text: str, meta: dict[str, Any], info: dict[str, Any] | None) -> str:
    facts = failures.bad_args(error, text)
    tool = facts["tool"] or "The command-line parser"
    script = _script_of(meta.get("command", ""))
    if facts["tool"] == "hydra":
        out = f"Hydra refused the override {facts['flag']!r} ({facts['problem']})"
        if facts["suggestion"]:
            out += f": to add a key the config does not have, write {facts['suggestion']}"
        if facts["choices"]:
            out += f"; options: {', '.join(facts['choices'])}"
        return out + (f"; check the key's spelling against `python {script} --cfg job`" if script else "") + "."
    out = f"{tool} refused the command: {facts['flag'] or error} ({facts['problem']})"
    suggestion = facts["suggestion"]
    repo_flags = [f for flag in (info or {}).get("args", []) for f in flag.get("flags", []) if f.startswith("-")]
    if not suggestion and facts["flag"] and facts["flag"].startswith("-") and repo_flags:
        close = difflib.get_close_matches(facts["flag"], repo_flags, n=1, cutoff=0.6)
        suggestion = close[0] if close else None
    if suggestion:
        out += f"; did you mean {suggestion}? (the {'tool' if facts['suggestion'] else 'script'} defines it)"
    if facts["choices"]:
        out += f"; valid: {', '.join(facts['choices'])}"
    return out + (f". Fix the flag in the command; `python {script} --help` lists them." if script
                  else ". Fix the flag in the command; the script's --help lists them.")


def _advise_dependency(error: str, text: str, meta: dict[str, Any]) -> str:
    facts = failures.dependency(error, text, detect.pip_name)
    if facts["install"]:
        env = meta.get("environment", {})
        where = f" in the run's environment ({env.get('kind')} {env.get('name')})" if env.get("name") else " in the run's environment"
        cmds = [c.replace("python -m pip", shlex.quote(_env_python(meta)) + " -m pip", 1) if _env_python(meta) else c
                for c in facts["install"]]
        return (f"A dependency is missing; the library says to run {' then '.join(f'`{c}`' for c in cmds)}{where}, "
                "then relaunch.")
    if facts["module"]:
        module, package = facts["module"], facts["package"]
        missing = (meta.get("missing_dependencies") or {}).get("packages") or []
        packages = " ".join(dict.fromkeys([package, *missing]))
        why = (" (pkg_resources ships with setuptools and was removed in setuptools 81)"
               if module.split(".")[0] == "pkg_resources" else
               f" (import name {module.split('.')[0]!r}, distribution {package})" if package != module.split(".")[0] else "")
        return (f"Module {module!r} is not installed in the run's environment{why}: `{_pip_command(meta, packages)}` "
                f"(or add {package} to requirements.txt and run `ck launch env REPO --install`, or relaunch with "
                "`ck launch start … --install`), then relaunch.")
    if facts.get("gym_env"):
        return (f"No installed package registers the gymnasium environment {facts['gym_env']!r}: install the "
                "package or gymnasium extra that provides it (see its docs), and check the id's spelling and version.")
    if facts["package"]:
        return (f"The library needs {facts['package']!r}, which is not installed: "
                f"`{_pip_command(meta, shlex.quote(facts['package']))}`, then relaunch.")
    return "An import failed: install the missing package in the run's environment and relaunch."


def _advise_service(error: str, text: str) -> str:
    facts = failures.service(error, text)
    where = f"{facts['host']}:{facts['port']}" if facts["port"] else "the address in the error"
    what = f" ({facts['service']})" if facts["service"] else ""
    out = f"Nothing is listening at {where}{what}: the connection was refused, this is not a download problem. "
    if facts["service"] == "MLflow tracking server":
        return out + ("Start the server first (`mlflow server --host 127.0.0.1 --port "
                      f"{facts['port'] or 5000}` in another shell), or log to local files instead: set "
                      "MLFLOW_TRACKING_URI=file:./mlruns (or unset it), then relaunch.")
    if facts["service"] == "W&B":
        return out + "Set WANDB_MODE=offline (sync later with `wandb sync`) or point WANDB_BASE_URL at a running server."
    env = f" or change {facts['env']}" if facts["env"] else " or change the URL/port the code uses"
    return out + f"Start that service before the run{env}, then relaunch."


def _advise_config_key(error: str, text: str) -> str:
    facts = failures.config_key(error, text)
    out = f"{facts['owner'] or 'The code'} does not accept the config key {facts['key']!r}"
    if facts["valid"]:
        close = difflib.get_close_matches(facts["key"] or "", facts["valid"], n=1)
        out += f"; valid keys: {', '.join(facts['valid'][:20])}" + (f" (did you mean {close[0]!r}?)" if close else "")
    return out + ": rename or remove it where the config/flags set it, then relaunch."


def _advise_drift(error: str, text: str, meta: dict[str, Any]) -> str:
    facts = failures.api_drift(error, text) or {}
    symbol = f"{facts.get('owner')}.{facts.get('symbol')}" if facts.get("owner") else facts.get("symbol")
    known = facts.get("known")
    dist = known[0] if known else detect.pip_name(facts["module"]) if facts.get("module") else None
    version = installed_version(dist, text, meta) if dist else None
    if dist in ("pytorch-lightning",) and version is None:
        version = installed_version("lightning", text, meta)
    installed = f"the installed {dist} {version}" if version else f"the installed {dist or 'library'}"
    out = f"{symbol} is not in {installed}: the code was written for another version"
    if known:
        out += f" ({known[2]}). Pin `{_pip_command(meta, shlex.quote(known[1]))}` to restore it, or update the code"
    elif dist and version:
        major = version.split(".")[0]
        out += (f". Pin the version the repo was written for (its requirements; e.g. "
                f"`{_pip_command(meta, shlex.quote(f'{dist}<{major}' if major != '0' else f'{dist}<{version}'))}`), "
                "or update the code to the new API")
    else:
        out += ". Pin the version the repo's requirements name and reinstall, or update the code to the new API"
    return out + "."


def _advise_distributed(text: str, info: dict[str, Any] | None) -> str:
    low = text.lower()
    backend = _repo_flag(info, ("backend", "dist_backend", "ddp_backend"))
    switch = entry_points.flag_text(backend, "gloo") if backend else "backend='gloo' in init_process_group"
    if "nccl built in" in low:
        return ("This torch was built without NCCL (a CPU-only build, or macOS/Windows) but the code asked for the "
                f"'nccl' backend: on CPU use {switch}, or run on a GPU machine with a CUDA build of torch.")
    if "processgroupnccl is only supported" in low:
        return ("The 'nccl' backend needs GPUs and this run sees none (a CUDA build of torch on a machine or "
                "allocation without visible GPUs, or CUDA_VISIBLE_DEVICES empty): run it where GPUs are "
                f"(`ck launch gpus`, --gpus), or on CPU with {switch}.")
    return ("torch.distributed was used without a launcher's environment (RANK, WORLD_SIZE, MASTER_ADDR…): "
            "start it with `torchrun --standalone --nproc_per_node=N …` or drop the distributed setup.")


def _script_of(command: str) -> str | None:
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    return next((w for w in words if w.endswith(".py")), None)


def advice_for(failure: str | None, text: str, evidence: str, meta: dict[str, Any], exit_code: int | None,
               info: dict[str, Any] | None = None, elapsed_s: float | None = None) -> str:
    command = meta.get("command", "")
    if failure == "cpu_oom":
        tried = _CPU_TRIED.search(text)
        size = f" (tried to allocate {size_binary(int(tried.group(1)))})" if tried else ""
        return (f"Host RAM ran out{size}: the machine's memory, not a GPU's. "
                + "; ".join(_memory_knobs(info, command, host=True)) + ".")
    if failure == "oom":
        tried = _TRIED.search(text)
        return ("GPU out of memory" + (f" (tried to allocate {tried.group(1)})" if tried else "") + ": "
                + "; ".join(_memory_knobs(info, command, host=False)) + ".")
    if failure == "bad_args":
        return _advise_bad_args(evidence, text, meta, info)
    if failure == "dependency":
        return _advise_dependency(evidence, text, meta)
    if failure == "service_unreachable":
        return _advise_service(evidence, text)
    if failure == "config_key":
        return _advise_config_key(evidence, text)
    if failure == "api_drift":
        return _advise_drift(evidence, text, meta)
    if failure == "no_progress":
        script = _script_of(command)
        return (f"Finished in {elapsed_s:g} s and logged no step: did the entry point train? "
                + (f"{script} may only define functions (no `if __name__ == \"__main__\":` call) or " if script else "")
                + "the README runs another command: `ck launch detect REPO` lists entry points and the README's command.")
    if failure in ("nan", "diverged"):
        what = "Loss became NaN/inf" if failure == "nan" else "Loss diverged"
        return (f"{what} ({evidence}): {_lr_hint(command, info)}; clip gradients "
                "(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)); add LR warmup; check the data "
                "for NaN/inf values or division by zero; prefer bf16 over fp16; locate the first bad op with "
                "torch.autograd.set_detect_anomaly(True).")
    if failure == "no_gpu":
        low = text.lower()
        where = ("There is no NVIDIA driver on this machine (a login node or a CPU-only host: not a driver/CUDA "
                 "version mismatch)" if "found no nvidia driver" in low
                 else "The code asks for a GPU and none is usable here")
        return (f"{where}: run it where GPUs are (a GPU node, e.g. through SLURM; `ck launch gpus` lists them), "
                f"or on CPU with {_cpu_switch(info)}.")
    if failure == "distributed":
        return _advise_distributed(text, info)
    if failure == "network":
        return (f"The run needed the network (a dataset or model download) and could not reach it ({evidence}). "
                "Compute nodes often have no internet: download first where there is (run the repo's data "
                "preparation script, or `huggingface-cli download …` into the cache), then set HF_HUB_OFFLINE=1 / "
                "HF_DATASETS_OFFLINE=1, or point the repo at the local copy; behind a proxy set HTTPS_PROXY.")
    if failure == "cuda":
        low = text.lower()
        visible = meta.get("gpus")
        if "not compiled with cuda" in low:
            return ("This torch build has no CUDA: install a CUDA build of torch in the run's environment "
                    "(`ck launch env REPO --verify --json` shows the build), or run on CPU.")
        if "driver version is insufficient" in low:
            return ("The NVIDIA driver is older than torch's CUDA runtime: install a torch build for the "
                    "driver's CUDA version (nvidia-smi shows it) or update the driver.")
        if "device-side assert" in low:
            return ("A CUDA kernel assertion failed, usually an index out of range (labels >= num_classes, "
                    "token ids >= vocab size): rerun with CUDA_LAUNCH_BLOCKING=1 or on CPU to see the real line.")
        if "nccl" in low:
            return ("NCCL (multi-GPU communication) failed: rerun with NCCL_DEBUG=INFO; check every rank sees "
                    "its GPU; try NCCL_P2P_DISABLE=1 on machines without P2P.")
        if "no cuda-capable device" in low:
            return (f"No GPU visible to the run (CUDA_VISIBLE_DEVICES={visible!r}): check `ck launch gpus "
                    "--json` and relaunch with --gpus set to a listed index.")
        return (f"CUDA error ({evidence}): check `ck launch gpus --json` (GPU present, not full, not in an "
                "error state), the driver/torch CUDA versions (`ck launch env REPO --verify`), and rerun with "
                "CUDA_LAUNCH_BLOCKING=1 to locate the failing op.")
    if failure == "file_not_found":
        match = _MISSING_PATH.search(evidence) or _MISSING_PATH.search(text)
        repo = meta.get("repo", ".")
        if match:
            missing = match.group(1) or match.group(2)
            where = missing if missing.startswith("/") else f"{missing} (relative to the run's working dir {repo})"
            if match.group(2):
                return f"The script {where} does not exist: fix the command's script path."
            return (f"{where} does not exist: fix the path in the command/config, or create/download the "
                    "data there before relaunching.")
        return f"A file is missing; paths are resolved from the repo ({repo})."
    if failure == "stopped":
        return f"Stopped on request ({meta['stopped_by']}); relaunch with `ck launch start` when ready."
    if failure == "killed":
        sig = process._signal_name(exit_code)
        return (f"Killed from outside ({sig or 'no exit code recorded: the run supervisor was SIGKILLed'}). "
                "SIGKILL with no traceback is usually the kernel's OOM killer (host RAM, not GPU): check "
                "`dmesg | grep -i -E 'killed process|out of memory'`, lower dataloader workers / batch size / "
                "dataset caching in RAM; or a scheduler time/memory limit.")
    if exit_code not in (None, 0):
        return f"Exited with code {exit_code} and no recognised failure: read the log tail (`ck launch logs`)."
    return "No failure found in the log."


def diagnose_text(text: str, *, exit_code: int | None, alive: bool, meta: dict[str, Any],
                  wrapper_vanished: bool = False, info: dict[str, Any] | None = None,
                  elapsed_s: float | None = None) -> dict[str, Any]:
    lines = _log_lines(text)
    exception = final_exception(lines)
    failure, evidence_line = None, None
    if meta.get("stopped_by") and not alive:
        failure = "stopped"  # a user's stop is not a failure, whatever the log shows after the signal
    elif exception:
        failure = classify_line(exception[1], text)
        evidence_line = exception if failure else None
    sig = process._signal_name(exit_code)
    if failure is None and not alive and (sig in ("SIGKILL", "SIGTERM", "SIGINT", "SIGHUP") or wrapper_vanished
                                          or any(l == "Killed" for _, l in lines)):
        failure = "killed"
        evidence_line = next(((n, l) for n, l in reversed(lines) if l == "Killed"), None)
    health = losses.health(text)
    if failure is None and health["state"] != "ok":
        # the first NaN / divergence: when training went wrong, not where the log happens to end
        failure, evidence_line = health["state"], (health["evidence"]["line"], health["evidence"]["text"])
    if failure is None and exit_code not in (None, 0):
        # no traceback named it: the last line anywhere in the log that matches a known failure
        for lineno, line in reversed(lines):
            if (name := classify_line(line, text)):
                failure, evidence_line = name, (lineno, line)
                break
    if failure is None and exit_code in (None, 0):
        for lineno, line in reversed(lines):
            if (name := classify_line(line, text)) in ("nan", "oom", "cpu_oom", "cuda", "network"):
                failure, evidence_line = name, (lineno, line)
                break
    if (failure is None and exit_code == 0 and not alive and elapsed_s is not None and elapsed_s < failures.QUICK_EXIT_S
            and not failures.has_progress(lines)):
        failure = "no_progress"
    evidence = evidence_line[1] if evidence_line else ""
    # the evidence a person needs: the error line and, for a parser's refusal, the lines it printed with it
    context = []
    if evidence_line:
        first = max(evidence_line[0] - 3, 1)
        context = [{"line": n, "text": l[:300]} for n, l in lines if first <= n <= evidence_line[0] + 6 and l.strip()]
    return {
        "failure": failure,
        "advice": advice_for(failure, text, evidence, meta, exit_code, info, elapsed_s),
        "evidence": {"line": evidence_line[0], "text": evidence_line[1][:500]} if evidence_line else None,
        "evidence_lines": context,
        "exception": exception[1][:500] if exception else None,
        "loss_health": health,
    }


def _read_log(path: Path) -> str:
    return procs.tail_text(path, _MAX_LOG_BYTES)


def _entry_info(meta: dict[str, Any]) -> dict[str, Any] | None:
    """detect's view of the script the run's command runs (its flags, Hydra configs), if any."""
    try:
        words = shlex.split(meta.get("command", ""))
    except ValueError:
        return None
    return process._detect_entry(Path(meta["repo"]), words) if Path(meta.get("repo", "")).is_dir() else None


def diagnose(run_id: str) -> dict[str, Any]:
    current = process.status(run_id)
    folder = state.run_dir(run_id)
    meta = state.read_meta(folder)
    text = _read_log(Path(current["log"]))
    vanished = not current["alive"] and current["exit_code"] is None and bool(meta.get("pid"))
    result = diagnose_text(text, exit_code=current["exit_code"], alive=current["alive"], meta=meta,
                           wrapper_vanished=vanished, info=_entry_info(meta), elapsed_s=current["elapsed_s"])
    run = wandb_runs.find_run(text, Path(meta["repo"]))
    metrics, source = wandb_runs.latest_metrics(run["run_dir"], text)
    run.update(metrics=metrics, metrics_source=source)
    result.update({"run_id": run_id, "alive": current["alive"], "state": current["state"],
                   "exit_code": current["exit_code"], "elapsed_s": current["elapsed_s"],
                   "log": current["log"], "wandb": run,
                   "log_tail": process.tail_lines(Path(current["log"]), 15)})
    return result
