"""The training command a repo's README gives, read the way a person reads it.

A person opens the README, finds the code blocks (Markdown fences, `$ ` prompts, reST literal
blocks) and runs the line that trains: `python train.py --algo ppo --env CartPole-v1`,
`torchrun --nproc_per_node=2 main.py …`, `uv run train-model --epochs 2`, `python -m pkg train`.
Lines that install, set up or evaluate are not the training command. Each command found is
resolved to what it runs in the repo: a script file, a module (`-m`), or a console script.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

READMES = ("README.md", "README.rst", "README.txt", "README", "readme.md", "Readme.md")
_MAX_BYTES = 512 * 1024
_FENCE = re.compile(r"^\s*(```|~~~)")
_PROMPT = re.compile(r"^\s*(?:\$|>|%|!|\(\w[\w.-]*\)\s*\$)\s+")
_ENV_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=\S*$")
_NOT_TRAINING = re.compile(r"(?:^|[/_.\s-])(?:eval|evaluate|enjoy|test|tests|infer|inference|predict|demo|download"
                           r"|prepare|preprocess|plot|benchmark|export|setup|convert|visuali[sz]e|render|serve|app)"
                           r"(?:$|[/_.\s-])", re.I)
_SKIP_FIRST = re.compile(r"^(?:pip3?|conda|git|cd|ls|cat|echo|export|source|wget|curl|mkdir|docker|make|apt|"
                         r"apt-get|brew|sudo|bash|sh|tensorboard|wandb|huggingface-cli|nvidia-smi)$")


def _blocks(text: str, rst: bool) -> list[tuple[int, str, str]]:
    """(line number, line, nearest heading) of every line inside a code block or after a prompt."""
    out = []
    in_fence = False
    literal_indent: int | None = None
    heading = ""
    lines = text.splitlines()
    for i, line in enumerate(lines, 1):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence and line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif not in_fence and rst and i < len(lines) and re.match(r"^[=\-~^*]{3,}\s*$", lines[i]) and line.strip():
            heading = line.strip()
        if rst and not in_fence:
            if literal_indent is not None:
                if line.strip() and (len(line) - len(line.lstrip())) < literal_indent:
                    literal_indent = None
                elif line.strip():
                    out.append((i, line, heading))
                    continue
            if line.rstrip().endswith("::"):
                literal_indent = 1
                continue
        if in_fence or _PROMPT.match(line):
            out.append((i, line, heading))
    return out


def _joined(block: list[tuple[int, str, str]]) -> list[tuple[int, str, str]]:
    """Lines continued with a trailing backslash, joined; prompts and comments dropped."""
    out: list[tuple[int, str, str]] = []
    pending: tuple[int, str, str] | None = None
    for lineno, line, heading in block:
        text = _PROMPT.sub("", line, count=1).strip()
        if pending:
            text = pending[1] + " " + text
            lineno, heading = pending[0], pending[2]
            pending = None
        if text.endswith("\\"):
            pending = (lineno, text[:-1].strip(), heading)
            continue
        if text and not text.startswith("#"):
            out.append((lineno, text, heading))
    if pending:
        out.append(pending)
    return out


def _launcher_tail(words: list[str]) -> tuple[list[str], str | None] | None:
    """The words after launchers/env assignments, and the runner (python, uv, console script…)."""
    i = 0
    runner = None
    while i < len(words):
        w = words[i]
        if _ENV_ASSIGN.match(w) or w in ("nohup", "time", "env"):
            i += 1
        elif w in ("uv", "poetry", "pipenv", "pdm", "hatch") and i + 1 < len(words) and words[i + 1] == "run":
            runner = runner or w
            i += 2
            while i < len(words) and words[i].startswith("-"):  # uv run --project X / --with Y
                i += 2 if words[i] in ("--project", "--with", "--package", "--python", "--directory", "--extra") else 1
        elif w in ("torchrun", "deepspeed", "horovodrun", "mpirun", "srun") or (
                w == "accelerate" and i + 1 < len(words) and words[i + 1] == "launch"):
            runner = runner or w
            i += 2 if w == "accelerate" else 1
            while i < len(words) and words[i].startswith("-"):
                i += 1 if "=" in words[i] or i + 1 >= len(words) or words[i + 1].startswith("-") \
                    or words[i + 1].endswith(".py") else 2
        elif w in ("python", "python3") or re.fullmatch(r"python3\.\d+", w):
            runner = runner or "python"
            i += 1
            while i < len(words) and words[i].startswith("-") and words[i] != "-m":
                i += 1  # python -u train.py
            break
        else:
            break
    return words[i:], runner


def _resolve(repo: Path, tail: list[str], runner: str | None, scripts: dict[str, str | None]) -> dict[str, Any] | None:
    if not tail:
        return None
    first = tail[0]
    if first == "-m" and len(tail) > 1:
        module = tail[1]
        parts = module.split(".")
        for root in (repo, repo / "src"):
            for path in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts) / "__main__.py"):
                if path.is_file():
                    return {"script": path.relative_to(repo).as_posix(), "module": module, "console_script": None,
                            "subcommand": _subcommand(tail[2:])}
        return None
    if first.endswith(".py"):
        path = (repo / first)
        if path.is_file() and path.resolve().is_relative_to(repo.resolve()):
            return {"script": path.relative_to(repo).as_posix(), "module": None, "console_script": None,
                    "subcommand": _subcommand(tail[1:])}
        return None
    if first in scripts and runner != "python":
        return {"script": scripts[first], "module": None, "console_script": first, "subcommand": _subcommand(tail[1:])}
    return None


def _without_comment(line: str, words: list[str]) -> str:
    """The command without a trailing `# comment` (a `#` inside quotes stays)."""
    for i in [i for i in range(len(line)) if line.startswith(" #", i)]:
        try:
            if shlex.split(line[:i]) == words:
                return line[:i].rstrip()
        except ValueError:
            continue
    return line


def _subcommand(rest: list[str]) -> str | None:
    return rest[0] if rest and re.fullmatch(r"[a-z][\w-]*", rest[0]) else None


def commands(repo: Path, console_scripts: dict[str, str | None] | None = None) -> list[dict[str, Any]]:
    """Every command in the README that runs something in the repo, best first: training over setup or
    evaluation, under a heading about training/usage, in README order otherwise."""
    scripts = console_scripts or {}
    found: list[dict[str, Any]] = []
    for name in READMES:
        path = repo / name
        if not path.is_file():
            continue
        try:
            text = path.read_bytes()[:_MAX_BYTES].decode("utf-8", errors="replace")
        except OSError:
            continue
        for order, (lineno, line, heading) in enumerate(_joined(_blocks(text, name.endswith(".rst")))):
            try:
                words = shlex.split(line, comments=True)
            except ValueError:
                continue
            line = _without_comment(line, words)
            if not words or _SKIP_FIRST.match(words[0]):
                continue
            if words[:2] in (["python", "-c"], ["python3", "-c"]) or "pip" in words[:3] or "setup.py" in words[:3]:
                continue
            tail, runner = _launcher_tail(words)
            target = _resolve(repo, tail, runner, scripts)
            if target is None:
                continue
            what = " ".join(filter(None, (target["script"], target["module"], target["console_script"],
                                          target["subcommand"])))
            training = bool(re.search(r"train|fit|finetune|fine-tune|pretrain", what, re.I))
            score = (3 if training else 0) + (2 if re.search(r"train|usage|quick ?start|getting started|run", heading, re.I) else 0) \
                - (4 if _NOT_TRAINING.search(what) and not training else 0)
            found.append({"command": line, "file": name, "line": lineno, "heading": heading or None,
                          "runner": runner, **target, "_score": score, "_order": order})
        break  # one README
    found.sort(key=lambda c: (-c["_score"], c["_order"]))
    for c in found:
        c["score"] = c.pop("_score")
        c["training"] = c["score"] > 0
        c.pop("_order")
    return found
