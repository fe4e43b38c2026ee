"""What training runs die of, read from their log the way a person reads it.

Pure text: no process, no file outside the log (the installed version of a drifted package is
looked up by diagnose.py). Each reader takes the error line (the last traceback's exception, or
the CLI's own error line when a parser refused the command) plus the whole log, and returns the
facts the advice needs: the flag and the suggestion a parser printed, the install command a
library recommends, the host:port nobody listens on, the rejected config key, the removed symbol.

Message formats are the tools' own: argparse (`prog: error: unrecognized arguments: …`), click
(`Error: No such option: --x Did you mean --y?`), tyro's boxed `Unrecognized options` with
`Perhaps you meant:`, Hydra's `Could not override 'k'.` / `Key 'k' is not in struct`, torch's
`DefaultCPUAllocator: can't allocate memory` and `CUDA out of memory`, gymnasium's
`DependencyNotInstalled`, urllib3's `Failed to establish a new connection: [Errno 111]`.
"""
from __future__ import annotations

import re
from typing import Any

# --------------------------------------------------------------------------- the error line

# `pkg.mod.SomeError: message` / `SomeError` / `gymnasium.error.NameNotFound: …`: a dotted name whose last
# part is a class name, at the start of a line, after a traceback's indented frames.
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_]\w*\.)*(?P<cls>[A-Z]\w*)(?::\s*(?P<msg>.*))?$")
_NOT_EXCEPTIONS = {"Traceback", "During", "The", "Epoch", "Step", "Loss", "Error", "Usage", "Set"}
# box drawing of rich / tyro panels: "│ Unrecognized options: --x │"
_BOX = re.compile(r"^[\s│┃|╭╰─━┏┗╮╯┓┛]+|[\s│┃|╮╯┓┛─]+$")


def final_exception(lines: list[tuple[int, str]]) -> tuple[int, str] | None:
    """The exception line of the last traceback: the first unindented `Name: message` after its frames."""
    found = None
    in_traceback = False
    for lineno, line in lines:
        # plain tracebacks, and rich's boxed ones (typer, some Lightning setups): "╭── Traceback (most recent…"
        if line.startswith("Traceback (most recent call last)") or (
                line[:1] in "╭┏" and "Traceback (most recent call last)" in line):
            in_traceback = True
            continue
        if (not in_traceback or not line.strip() or line[0].isspace() or line.lstrip().startswith("^")
                or line[0] in "│┃╰┗╭┏"):
            continue
        match = _EXCEPTION_LINE.match(line.strip())
        if match and match.group("cls") not in _NOT_EXCEPTIONS and (
                match.group("msg") is not None or re.search(r"(Error|Exception|Interrupt|Exit)$", match.group("cls"))):
            found = (lineno, line.strip())
        in_traceback = False
    return found


def unbox(line: str) -> str:
    return _BOX.sub("", line).strip()


_ARGPARSE_ERROR = re.compile(r"^(?P<prog>\S+): error: (?P<msg>.+)$")
_CLICK_ERROR = re.compile(r"^Error: (?P<msg>.+)$")
_HYDRA_ERROR = re.compile(r"^(?:Could not override '|Error merging override |Could not load '|Could not append to config"
                          r"|In '[\w/]+': Could not |Could not find ')")


def cli_error(lines: list[tuple[int, str]]) -> tuple[int, str] | None:
    """The last line a command-line parser refused the command with (argparse, click, tyro, Hydra)."""
    found = None
    for lineno, line in lines:
        text = unbox(line)
        if (_ARGPARSE_ERROR.match(line) or _CLICK_ERROR.match(line) or _HYDRA_ERROR.match(line)
                or re.match(r"^(Unrecognized options?|Required options?|Invalid choice|Error parsing)\b", text)):
            found = (lineno, text if text.startswith(("Unrecognized", "Required", "Invalid", "Error parsing"))
                     else line.strip())
    return found


# --------------------------------------------------------------------------- categories, in order of precedence

CATEGORIES: list[tuple[str, re.Pattern[str]]] = [
    ("cpu_oom", re.compile(r"DefaultCPUAllocator: (?:can't allocate memory|not enough memory)"
                           r"|Unable to allocate [\d.]+ [KMGTP]i?B for an array|std::bad_alloc|\bMemoryError\b")),
    ("oom", re.compile(r"CUDA out of memory|OutOfMemoryError|CUBLAS_STATUS_ALLOC_FAILED|RESOURCE_EXHAUSTED"
                       r"|MPS backend out of memory|HIP out of memory", re.I)),
    ("bad_args", re.compile(r"^\S+: error: |^Error: (?:No such option|Missing option|Missing argument|Invalid value"
                            r"|Got unexpected extra argument|No such command)|Unrecognized options?:"
                            r"|Could not override '|Error merging override|Could not append to config"
                            r"|Could not find '[\w/]+'|Could not load '[\w/]+'", re.M)),
    ("api_drift", re.compile(r"has no attribute '\w+'|cannot import name '\w+' from|unexpected keyword argument '\w+'")),
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
    ("service_unreachable", re.compile(r"Connection refused|ConnectionRefusedError|\[Errno (?:111|61)\]|ECONNREFUSED")),
    ("network", re.compile(r"URLError|urlopen error|Temporary failure in name resolution|Name or service not known"
                           r"|nodename nor servname|Max retries exceeded|ConnectTimeout|ReadTimeout|ConnectionError"
                           r"|Network is unreachable|OfflineModeIsEnabled|LocalEntryNotFoundError"
                           r"|outgoing traffic has been disabled|We couldn't connect to|Couldn't reach"
                           r"|CERTIFICATE_VERIFY_FAILED|gaierror|HTTPError: HTTP Error|Failed to resolve")),
    ("dependency", re.compile(r"ModuleNotFoundError|No module named|DependencyNotInstalled|NamespaceNotFound"
                              r"|NameNotFound: Environment|[Pp]lease (?:run )?(?:`|')?pip install"
                              r"|[Pp]lease install|is not installed|requires the [\w-]+ library"
                              r"|(?:Have you|Did you) installed? the proper package|ImportError")),
    ("config_key", re.compile(r"Key '[\w.]+' (?:is )?not in|not in struct|Unsupported config key|unknown (?:config )?key")),
    ("file_not_found", re.compile(r"FileNotFoundError|No such file or directory|can't open file")),
]


def classify(line: str, text: str = "") -> str | None:
    """The category of an error line (text: the whole log, for the library frames of a traceback)."""
    for name, pattern in CATEGORIES:
        if pattern.search(line):
            if name == "api_drift" and not api_drift(line, text):
                return "config_key" if "unexpected keyword argument" in line else None
            return name
    return None


# --------------------------------------------------------------------------- bad arguments


def bad_args(error: str, text: str) -> dict[str, Any]:
    """The flag a parser refused and the suggestion it printed: {tool, flag, problem, suggestion, choices}."""
    out: dict[str, Any] = {"tool": None, "flag": None, "problem": error, "suggestion": None, "choices": None}
    if (m := re.search(r"Unrecognized options?: (.+)", error)):
        out.update(tool="tyro", flag=m.group(1).split()[0], problem="unrecognized option")
        out["suggestion"] = _tyro_suggestion(text)
    elif (m := _ARGPARSE_ERROR.match(error)):
        out["tool"] = "argparse"
        msg = m.group("msg")
        if (u := re.match(r"unrecognized arguments: (.+)", msg)):
            out.update(flag=u.group(1).split()[0], problem="unrecognized argument")
        elif (r := re.match(r"the following arguments are required: (.+)", msg)):
            out.update(flag=r.group(1).split(",")[0].strip(), problem="required argument missing")
        elif (c := re.match(r"argument ([^:]+): invalid choice: (.+?) \(choose from (.+)\)", msg)):
            out.update(flag=c.group(1).split("/")[-1], problem=f"invalid choice {c.group(2)}",
                       choices=[x.strip(" '\"") for x in c.group(3).split(",")])
        elif (v := re.match(r"argument ([^:]+): (.+)", msg)):
            out.update(flag=v.group(1).split("/")[-1], problem=v.group(2))
        elif (a := re.match(r"ambiguous option: (\S+) could match (.+)", msg)):
            out.update(flag=a.group(1).split("=")[0], problem="ambiguous option", choices=[x.strip() for x in a.group(2).split(",")])
    elif (m := _CLICK_ERROR.match(error)):
        out["tool"] = "click"
        msg = m.group("msg")
        if (n := re.match(r"No such option: (\S+)", msg)):
            out.update(flag=n.group(1), problem="no such option")
            if (d := re.search(r"Did you mean (\S+?)\?", msg)):
                out["suggestion"] = d.group(1)
            elif (p := re.search(r"\(Possible options: (.+)\)", msg)):
                out["choices"] = [x.strip() for x in p.group(1).split(",")]
        elif (q := re.match(r"(Missing option|Missing argument|Invalid value for) '([^']+)'", msg)):
            out.update(flag=q.group(2).split(" / ")[-1], problem=q.group(1).lower() + (msg[q.end():] or ""))
        elif (x := re.match(r"Got unexpected extra arguments? \((.+)\)", msg)):
            out.update(flag=x.group(1).split()[0], problem="unexpected extra argument")
    elif error.startswith(("Could not override", "Error merging override", "Could not append", "Could not find",
                           "Could not load", "In '")):
        out["tool"] = "hydra"
        if (k := re.search(r"(?:Could not override|Could not find|Could not load) '([^']+)'", error)):
            out["flag"] = k.group(1)
        elif (k := re.search(r"Error merging override \+?(\S+?)=", error)):
            out["flag"] = k.group(1)
        if (a := re.search(r"To append to your (?:config|default list) use (\+\S+)", text)):
            out["suggestion"] = a.group(1)
        if (s := re.search(r"Key '([^']+)' (?:is )?not in (?:struct|'[\w.]+')", text)):
            out["problem"] = s.group(0)
        if (opts := re.search(r"Available options:\s*\n((?:\s+\S+\n?)+)", text)):
            out["choices"] = opts.group(1).split()
    return out


def _tyro_suggestion(text: str) -> str | None:
    """The first flag listed under tyro's `Perhaps you meant:` (its lines are boxed)."""
    lines = [unbox(l) for l in text.splitlines()]
    for i, line in enumerate(lines):
        if line.startswith("Perhaps you meant"):
            rest = line.split(":", 1)[1].strip()
            for candidate in [rest, *lines[i + 1:i + 6]]:
                if (m := re.match(r"(--?[\w.-]+)", candidate.strip())):
                    return m.group(1)
    return None


# --------------------------------------------------------------------------- dependencies

# import names whose distribution is named differently (beyond detect.PIP_NAMES), and the pins that
# bring back a removed module
DIST_FOR_IMPORT = {"pkg_resources": "'setuptools<81'", "gym": "gym", "box2d": "'gymnasium[box2d]'",
                   "Box2D": "'gymnasium[box2d]'", "tensorboard": "tensorboard", "tensorboardX": "tensorboardX",
                   "mujoco_py": "mujoco-py", "ale_py": "ale-py", "MySQLdb": "mysqlclient", "magic": "python-magic",
                   "OpenGL": "PyOpenGL", "serial": "pyserial", "usb": "pyusb", "zmq": "pyzmq", "git": "GitPython",
                   "jwt": "PyJWT", "lxml": "lxml", "Bio": "biopython", "dateutil": "python-dateutil",
                   "faiss": "faiss-cpu", "torch_geometric": "torch-geometric", "mpl_toolkits": "matplotlib"}
_MODULE = re.compile(r"No module named ['\"]?([\w.]+)")
_PIP_COMMAND = re.compile(r"(pip3? install (?:-U |--upgrade )?(?:\"[^\"]+\"|'[^']+'|[^\s`'\"]+)"
                          r"(?: (?:\"[^\"]+\"|'[^']+'|[A-Za-z0-9][\w.\-\[\],<>=!~]*))*)")
_PLEASE_INSTALL = re.compile(r"[Pp]lease install (?:the )?[`'\"]?([A-Za-z][\w.\-\[\]]*)[`'\"]?")
_NOT_INSTALLED = re.compile(r"[`'\"]?([A-Za-z][\w.\-\[\]]*)[`'\"]? (?:is|are) not installed")


# gymnasium environments that only exist once an extra is installed (NameNotFound / NamespaceNotFound)
GYM_EXTRAS = {"box2d": ("LunarLander", "BipedalWalker", "CarRacing"),
              "mujoco": ("Ant", "HalfCheetah", "Hopper", "Humanoid", "HumanoidStandup", "InvertedPendulum",
                         "InvertedDoublePendulum", "Pusher", "Reacher", "Swimmer", "Walker2d"),
              "atari": ("ALE", "Pong", "Breakout", "SpaceInvaders", "Seaquest", "Qbert", "MsPacman", "Enduro")}
_GYM_MISSING = re.compile(r"Namespace (\w+) not found|Environment `?(?:[\w]+/)?(\w+?)`? doesn't exist")


def dependency(error: str, text: str, pip_name) -> dict[str, Any]:
    """{module, install: [commands the library recommends, in order] or None, package}."""
    if (gym := _GYM_MISSING.search(error)):
        env = gym.group(1) or gym.group(2)
        extra = next((e for e, names in GYM_EXTRAS.items() if env in names), None)
        if extra:
            return {"module": None, "package": f"'gymnasium[{extra}]'",
                    "install": [f"python -m pip install 'gymnasium[{extra}]'"]}
        return {"module": None, "package": None, "install": None, "gym_env": env}
    recommended = []
    for source in (error, *reversed(text.splitlines()[-60:])):
        for cmd in _PIP_COMMAND.findall(source):
            cmd = cmd.rstrip(".,;:)`")
            if cmd.count("\"") % 2 == 0 and cmd.count("'") % 2 == 0 and cmd not in recommended:
                recommended.append(cmd)
        if recommended:
            break
    module = None
    if (m := _MODULE.search(error) or _MODULE.search(text)):
        module = m.group(1)
    package = None
    if module:
        top = module.split(".")[0]
        package = DIST_FOR_IMPORT.get(module) or DIST_FOR_IMPORT.get(top) or pip_name(module)
    elif (m := _PLEASE_INSTALL.search(error) or _NOT_INSTALLED.search(error)):
        package = m.group(1)
    return {"module": module, "package": package,
            "install": [re.sub(r"^pip3? ", "python -m pip ", c) for c in recommended] or None}


# --------------------------------------------------------------------------- local services

KNOWN_PORTS = {5000: ("MLflow tracking server", "MLFLOW_TRACKING_URI"),
               6006: ("TensorBoard", None), 8080: ("a local W&B server", "WANDB_BASE_URL"),
               6379: ("Redis", None), 8265: ("the Ray dashboard", None), 27017: ("MongoDB", None),
               5432: ("PostgreSQL", None), 29500: ("torch.distributed's rendezvous (MASTER_PORT)", "MASTER_PORT"),
               8000: ("a local inference/API server", None), 11434: ("Ollama", None)}
_HOST_PORT = re.compile(r"host='([^']+)', port=(\d+)|https?://([\w.\-]+|\[[\d:]+\]):(\d+)"
                        r"|\('([\d.]+|localhost)', (\d+)\)|(localhost|127\.0\.0\.1|0\.0\.0\.0):(\d+)")


def service(error: str, text: str) -> dict[str, Any]:
    """{host, port, service, env}: what the refused connection was for, as far as the URL says."""
    host = port = None
    for source in (error, text):
        matches = list(_HOST_PORT.finditer(source))
        if matches:
            groups = [g for g in matches[-1].groups() if g]
            host, port = groups[0], int(groups[1])
            break
    low = text.lower()
    name, env = KNOWN_PORTS.get(port or 0, (None, None))
    if "mlflow" in low and (name is None or port == 5000):
        name, env = "MLflow tracking server", "MLFLOW_TRACKING_URI"
    elif "wandb" in error.lower() or ("wandb" in low and port in (8080, 443, None)):
        name, env = "W&B", "WANDB_BASE_URL"
    return {"host": host, "port": port, "service": name, "env": env}


# --------------------------------------------------------------------------- API drift

# (symbol, owner) -> (distribution, pin that restores it, what replaced it)
KNOWN_DRIFT = {
    ("add_argparse_args", "Trainer"): ("pytorch-lightning", "pytorch-lightning<2.0",
                                       "Lightning 2 removed Trainer.add_argparse_args: use LightningCLI or plain argparse"),
    ("from_argparse_args", "Trainer"): ("pytorch-lightning", "pytorch-lightning<2.0",
                                        "Lightning 2 removed Trainer.from_argparse_args"),
    ("evaluation_strategy", "TrainingArguments"): ("transformers", "transformers<4.46",
                                                   "renamed eval_strategy (transformers >= 4.41 accepts it)"),
    ("float", "numpy"): ("numpy", "numpy<1.24", "use float (the builtin) or np.float64"),
    ("int", "numpy"): ("numpy", "numpy<1.24", "use int (the builtin) or np.int64"),
    ("bool", "numpy"): ("numpy", "numpy<1.24", "use bool (the builtin) or np.bool_"),
    ("object", "numpy"): ("numpy", "numpy<1.24", "use object (the builtin)"),
}
_NO_ATTR = re.compile(r"(?:type object|module) '([\w.]+)' has no attribute '(\w+)'|'(\w+)' object has no attribute '(\w+)'")
_CANNOT_IMPORT = re.compile(r"cannot import name '(\w+)' from '([\w.]+)'")
_UNEXPECTED_KW = re.compile(r"(?:([\w.]+)\.)?(\w+)\(\) got an unexpected keyword argument '(\w+)'")
_SITE_PACKAGE = re.compile(r"site-packages/([A-Za-z_][\w]*)/")


def api_drift(error: str, text: str) -> dict[str, Any] | None:
    """{symbol, owner, module, known: (dist, pin, note) or None} when a library no longer has what the code uses."""
    if (m := _CANNOT_IMPORT.search(error)):
        return _drift(m.group(1), m.group(2).split(".")[-1], m.group(2), text)
    if (m := _NO_ATTR.search(error)):
        owner, symbol = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        module = owner if "type object" not in m.group(0) and "object has" not in m.group(0) else None
        result = _drift(symbol, owner.split(".")[-1], module, text)
        # an attribute missing on the user's own object is a bug, not drift: only library owners count
        return result if result["known"] or result["module"] else None
    if (m := _UNEXPECTED_KW.search(error)):
        owner = m.group(1) or m.group(2)
        if (m.group(3), owner.split(".")[-1]) in KNOWN_DRIFT:
            return _drift(m.group(3), owner.split(".")[-1], None, text)
    return None


def _drift(symbol: str, owner: str, module: str | None, text: str) -> dict[str, Any]:
    known = KNOWN_DRIFT.get((symbol, owner))
    if module is None:
        # the library frame nearest the error names the package the code called into
        frames = _SITE_PACKAGE.findall(text)
        module = frames[-1] if frames else None
    if known is None and module is None:
        return {"symbol": symbol, "owner": owner, "module": None, "known": None}
    return {"symbol": symbol, "owner": owner, "module": module, "known": known}


# --------------------------------------------------------------------------- config keys

_KEY_PATTERNS = [re.compile(r"unexpected keyword argument '(\w+)'"), re.compile(r"Key '([\w.]+)' (?:is )?not in"),
                 re.compile(r"(?:Unsupported|unknown|Unrecognized) (?:config )?key:? ['\"]?([\w.]+)", re.I)]
_VALID = re.compile(r"(?:[Vv]alid (?:keys|options|arguments|parameters|values)|[Aa]vailable (?:keys|options)|"
                    r"[Ee]xpected one of|choose from)\s*(?:are|is)?:?\s*\[?(.+?)\]?\.?$", re.M)


def config_key(error: str, text: str) -> dict[str, Any]:
    key = None
    for pattern in _KEY_PATTERNS:
        if (m := pattern.search(error)):
            key = m.group(1)
            break
    owner = _UNEXPECTED_KW.search(error)
    valid = None
    if (v := _VALID.search(error) or _VALID.search(text)):
        valid = [x.strip(" '\"`") for x in re.split(r",\s*|\s+", v.group(1)) if x.strip(" '\"`")]
    return {"key": key, "owner": owner.group(0).split("(")[0] if owner else None, "valid": valid}


# --------------------------------------------------------------------------- progress

QUICK_EXIT_S = 60  # a run that ends this fast without one progress line has not trained
PROGRESS = re.compile(r"\b(?:loss|step|steps|epoch|iter|iteration|batch|accuracy|acc|reward|return|it/s|s/it)\b"
                      r"|\d+%\|", re.I)


def has_progress(lines: list[tuple[int, str]]) -> bool:
    return any(PROGRESS.search(line) for _, line in lines)
