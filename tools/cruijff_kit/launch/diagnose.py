"""Name why a run failed, from its log and exit code, with a concrete fix.

Order of evidence: a stop the user asked for, the final exception of the last Python traceback
(the real cause), then a signal death (exit 128+N, or a supervisor that vanished without recording
an exit code), then the losses (the first NaN or divergence, see losses.py: printed, not raised),
then the last line anywhere in the log matching a known failure. Advice names the repo's own
switches (its flag form, its Hydra override) where detect finds them.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

from ..util import procs
from . import detect, entry_points, losses, process, state, wandb_runs

_MAX_LOG_BYTES = 4 * 2**20  # the end of a log holds the failure; do not read GBs of progress bars

PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("oom", re.compile(r"CUDA out of memory|OutOfMemoryError|CUBLAS_STATUS_ALLOC_FAILED|RESOURCE_EXHAUSTED"
                       r"|MPS backend out of memory|HIP out of memory", re.I)),
    # asked for a GPU where there is none (not a broken one): Lightning's accelerator check, torch
    # on a machine without a driver
    ("no_gpu", re.compile(r"No supported gpu backend found|GPUAccelerator can not run on your system"
                          r"|Found no NVIDIA driver|no CUDA-capable device is detected"
                          r"|requested to use (?:the )?GPU but .*not available", re.I)),
    ("distributed", re.compile(r"Distributed package doesn't have NCCL built in|ProcessGroupNCCL is only supported"
                               r"|environment variable (?:RANK|WORLD_SIZE|MASTER_ADDR|MASTER_PORT) expected"
                               r"|Default process group has not been initialized", re.I)),
    ("cuda", re.compile(r"CUDA error|CUDA driver version is insufficient"
                        r"|NCCL error|ncclInternalError|cuDNN error|CUDNN_STATUS"
                        r"|device-side assert|CUDA_ERROR_|Torch not compiled with CUDA enabled"
                        r"|CUDA initialization|NVIDIA-SMI has failed", re.I)),
    ("network", re.compile(r"URLError|urlopen error|Temporary failure in name resolution|Name or service not known"
                           r"|nodename nor servname|Max retries exceeded|ConnectTimeout|ReadTimeout|ConnectionError"
                           r"|Network is unreachable|OfflineModeIsEnabled|LocalEntryNotFoundError"
                           r"|outgoing traffic has been disabled|We couldn't connect to|Couldn't reach"
                           r"|CERTIFICATE_VERIFY_FAILED|gaierror|HTTPError: HTTP Error|Failed to resolve")),
    ("import", re.compile(r"ModuleNotFoundError|ImportError|No module named")),
    ("file_not_found", re.compile(r"FileNotFoundError|No such file or directory|can't open file")),
    ("nan", losses.NAN_MESSAGE),
]
_EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?([A-Z]\w*(?:Error|Exception|Interrupt|Exit|Warning))(?::\s*(.*))?$")
_MODULE = re.compile(r"No module named ['\"]?([\w.]+)")
_CANNOT_IMPORT = re.compile(r"cannot import name ['\"]?(\w+)['\"]? from ['\"]?([\w.]+)")
_MISSING_PATH = re.compile(r"No such file or directory:?\s*['\"]([^'\"]+)['\"]|can't open file ['\"]([^'\"]+)['\"]")
_TRIED = re.compile(r"Tried to allocate ([\d.]+ ?[KMGT]i?B)")



def _log_lines(text: str) -> list[tuple[int, str]]:
    # The wrapper's own "[ck launch]" lines echo the command, which may contain words like "nan".
    return [(i, line.rstrip()) for i, line in enumerate(text.splitlines(), 1)
            if not line.startswith("[ck launch]")]


def final_exception(lines: list[tuple[int, str]]) -> tuple[int, str] | None:
    """The last `SomeError: message` line that follows a traceback header."""
    seen_traceback = False
    found = None
    for lineno, line in lines:
        if line.startswith("Traceback (most recent call last)"):
            seen_traceback = True
        elif seen_traceback and _EXCEPTION.match(line.strip()) and not line.startswith(" "):
            found = (lineno, line.strip())
    return found


def classify_line(line: str) -> str | None:
    for name, pattern in PATTERNS:
        if pattern.search(line):
            return name
    return None


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


def advice_for(failure: str | None, text: str, evidence: str, meta: dict[str, Any], exit_code: int | None,
               info: dict[str, Any] | None = None) -> str:
    command = meta.get("command", "")
    if failure == "oom":
        tried = _TRIED.search(text)
        hint = []
        bs = _flag_value(command, "--batch_size", "--batch-size", "--bs", "--per_device_train_batch_size",
                         "--train_batch_size")
        if bs and bs[1].isdigit() and int(bs[1]) > 1:
            hint.append(f"halve the batch size ({bs[0]} {int(bs[1]) // 2}) and double gradient accumulation "
                        "to keep the effective batch")
        else:
            hint.append("reduce the batch size (and raise gradient accumulation to keep the effective batch)")
        hint += ["enable gradient checkpointing", "train in bf16/fp16 mixed precision",
                 "pick a GPU with more free memory (`ck launch gpus --json`)",
                 "set PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True if memory is fragmented"]
        return ("GPU out of memory" + (f" (tried to allocate {tried.group(1)})" if tried else "")
                + ": " + "; ".join(hint) + ".")
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
        low = text.lower()
        if "nccl built in" in low or "processgroupnccl" in low:
            backend = _repo_flag(info, ("backend", "dist_backend", "ddp_backend"))
            switch = entry_points.flag_text(backend, "gloo") if backend else "backend='gloo' in init_process_group"
            return ("This torch has no NCCL (a CPU-only build, or macOS/Windows) but the code asked for the 'nccl' "
                    f"backend: on CPU use {switch}, or run on a GPU machine with a CUDA build of torch.")
        return ("torch.distributed was used without a launcher's environment (RANK, WORLD_SIZE, MASTER_ADDR…): "
                "start it with `torchrun --standalone --nproc_per_node=N …` or drop the distributed setup.")
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
    if failure == "import":
        missing = _MODULE.search(evidence) or _MODULE.search(text)
        if missing:
            module = missing.group(1)
            package = detect.pip_name(module)
            env = meta.get("environment", {})
            # every import the entry point misses, not only the first one to fail
            missing = (meta.get("missing_dependencies") or {}).get("packages") or []
            packages = " ".join(dict.fromkeys([package, *missing]))
            if env.get("kind") == "conda":
                cmd = f"conda run -n {shlex.quote(env['name'])} python -m pip install {packages}"
            elif env.get("kind") in ("uv", "poetry"):
                cmd = f"{env['kind']} add {packages}"
            elif env.get("interpreter") or env.get("name"):
                py = env.get("interpreter") or (env["name"] if env.get("kind") == "interpreter"
                                                else env["name"] + "/bin/python")
                cmd = f"{shlex.quote(py)} -m pip install {packages}"
            else:
                cmd = f"python -m pip install {packages}"
            return (f"Module {module!r} is not installed in the run's environment: `{cmd}` (or add {package} "
                    "to requirements.txt and run `ck launch env REPO --install`, or relaunch with "
                    "`ck launch start … --install`), then relaunch.")
        cannot = _CANNOT_IMPORT.search(text)
        if cannot:
            return (f"{cannot.group(2)} has no {cannot.group(1)!r}: the installed version does not match the "
                    f"code; pin the version the repo expects (see its requirements) and reinstall.")
        return "An import failed: install the missing package in the run's environment and relaunch."
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
                  wrapper_vanished: bool = False, info: dict[str, Any] | None = None) -> dict[str, Any]:
    lines = _log_lines(text)
    exception = final_exception(lines)
    failure, evidence_line = None, None
    if meta.get("stopped_by") and not alive:
        failure = "stopped"  # a user's stop is not a failure, whatever the log shows after the signal
    elif exception:
        failure = classify_line(exception[1])
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
    if failure is None:
        for lineno, line in reversed(lines):
            if (name := classify_line(line)):
                failure, evidence_line = name, (lineno, line)
                break
    evidence = evidence_line[1] if evidence_line else ""
    return {
        "failure": failure,
        "advice": advice_for(failure, text, evidence, meta, exit_code, info),
        "evidence": {"line": evidence_line[0], "text": evidence_line[1][:500]} if evidence_line else None,
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
                           wrapper_vanished=vanished, info=_entry_info(meta))
    run = wandb_runs.find_run(text, Path(meta["repo"]))
    metrics, source = wandb_runs.latest_metrics(run["run_dir"], text)
    run.update(metrics=metrics, metrics_source=source)
    result.update({"run_id": run_id, "alive": current["alive"], "state": current["state"],
                   "exit_code": current["exit_code"], "elapsed_s": current["elapsed_s"],
                   "log": current["log"], "wandb": run,
                   "log_tail": process.tail_lines(Path(current["log"]), 15)})
    return result
