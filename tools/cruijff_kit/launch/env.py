"""The Python environment a training command runs in.

Conda when it exists (create or reuse an env, run through `conda run`), otherwise a venv; or,
when asked, an interpreter as it is. `plan()` only describes the steps; `apply()` runs the ones
asked for (create / install / verify). `runner()` is what `start` uses and never creates
anything.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..errors import CkError
from .detect import dependency_files
from ..templating import render

VERIFY_TIMEOUT_S = 300
INSTALL_TIMEOUT_S = 3600


def conda_exe() -> str | None:
    # CONDA_EXE is set by `conda activate` even when conda's bin is not on PATH.
    return shutil.which("conda") or (os.environ.get("CONDA_EXE") if os.environ.get("CONDA_EXE")
                                     and os.access(os.environ["CONDA_EXE"], os.X_OK) else None)


def conda_envs(conda: str) -> dict[str, str]:
    """name -> prefix of every conda env (the root env is 'base')."""
    proc = subprocess.run([conda, "env", "list", "--json"], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise CkError(f"`conda env list --json` failed: {proc.stderr.strip()[-500:]}", field="conda")
    prefixes = json.loads(proc.stdout).get("envs", [])
    root = json.loads(proc.stdout).get("root_prefix")
    return {("base" if p == root else Path(p).name): p for p in prefixes}


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _venv_path(repo: Path, name: str | None) -> Path:
    if not name:
        return repo / ".venv"
    path = Path(name).expanduser()
    return path if path.is_absolute() else repo / path


def plan(repo: str | Path, *, kind: str | None = None, name: str | None = None,
         python_version: str | None = None, python: str | None = None,
         with_wandb: bool = False) -> dict[str, Any]:
    """The environment and the steps (argv lists, run from the repo) that would set it up."""
    repo = Path(repo).expanduser()
    if not repo.is_dir():
        raise CkError(f"repository not found: {repo} is not a directory", field="REPO")
    repo = repo.resolve()
    conda = conda_exe()
    kind = kind or ("conda" if conda else "venv")
    deps = dependency_files(repo)
    packages = {p.lower() for d in deps for p in d["packages"]}

    if kind == "conda":
        if not conda:
            raise CkError("--kind conda asked for, but conda is not installed (not on PATH, no $CONDA_EXE)",
                          field="--kind", hint="use --kind venv, or --kind current to use an interpreter as it is")
        name = name or repo.name
        envs = conda_envs(conda)
        exists = name in envs
        prefix = [conda, "run", "--no-capture-output", "-n", name]
        create = None if exists else [conda, "create", "-n", name, f"python={python_version or '3.11'}", "-y"]
        py = [*prefix, "python"]
        env = {"kind": "conda", "name": name, "exists": exists, "prefix": envs.get(name)}
    elif kind == "venv":
        path = _venv_path(repo, name)
        exists = venv_python(path).exists()
        base = python or (shutil.which(f"python{python_version}") if python_version else sys.executable)
        if not base:
            raise CkError(f"no python{python_version} on PATH to create the venv with", field="--python-version",
                          hint="install that Python, pass --python /path/to/python, or omit --python-version")
        create = None if exists else [base, "-m", "venv", str(path)]
        py = [str(venv_python(path))]
        env = {"kind": "venv", "name": str(path), "exists": exists, "prefix": str(path)}
    elif kind == "current":
        interp = python or sys.executable
        if not (Path(interp).is_file() and os.access(interp, os.X_OK)):
            raise CkError(f"interpreter not found or not executable: {interp}", field="--python")
        create = None
        py = [interp]
        env = {"kind": "current", "name": interp, "exists": True, "prefix": None}
    else:
        raise CkError(f"unknown environment kind {kind!r}", field="--kind", hint="conda, venv or current")

    install: list[list[str]] = []
    editable_done = False
    for dep in deps:
        if dep["file"] == "requirements.txt":
            install.append([*py, "-m", "pip", "install", "-r", "requirements.txt"])
        elif dep["file"] in ("pyproject.toml", "setup.py") and not editable_done:
            install.append([*py, "-m", "pip", "install", "-e", "."])
            editable_done = True
        elif dep["file"].startswith("environment.") and kind == "conda":
            install.append([conda, "env", "update", "-n", env["name"], "-f", dep["file"]])
    if with_wandb and "wandb" not in packages:
        install.append([*py, "-m", "pip", "install", "wandb"])
    skipped = [d["file"] for d in deps if d["file"].startswith("environment.") and kind != "conda"]

    return {
        "repo": str(repo),
        "conda_available": bool(conda),
        "env": env,
        "python": py,
        "steps": {
            "create": create,
            "install": install,
            "verify": [*py, "-c", "<templates/launch/verify_env.py.j2>"],
        },
        "commands": [shlex.join(c) for c in ([create] if create else []) + install],
        "skipped": [f"{f}: needs conda" for f in skipped],
        "dependency_files": [d["file"] for d in deps],
    }


def _run_step(argv: list[str], cwd: str, timeout: int, stream: bool) -> dict[str, Any]:
    # Long installs print progress; stream it to stderr for people, keep the tail for --json.
    proc = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=timeout)
    if stream:
        sys.stderr.write(proc.stdout)
    return {"command": shlex.join(argv), "exit_code": proc.returncode,
            "output_tail": proc.stdout[-2000:]}


def verify(python: list[str], cwd: str) -> dict[str, Any]:
    """Versions of Python, torch (+CUDA) and wandb inside the environment."""
    script = render("launch/verify_env.py.j2")
    try:
        proc = subprocess.run([*python, "-c", script], cwd=cwd, capture_output=True, text=True,
                              timeout=VERIFY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"verification timed out after {VERIFY_TIMEOUT_S} s"}
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"ok": False, "error": (proc.stderr or proc.stdout).strip()[-1000:]}
    report = json.loads(lines[-1])
    report["ok"] = report.get("torch") is not None
    return report


def apply(the_plan: dict[str, Any], *, create: bool, install: bool, verify_env: bool,
          stream: bool = False) -> dict[str, Any]:
    results: list[dict[str, Any]] = []
    cwd = the_plan["repo"]
    steps = the_plan["steps"]
    todo: list[list[str]] = []
    if create and steps["create"]:
        todo.append(steps["create"])
    if install:
        if not the_plan["env"]["exists"] and not create:
            raise CkError(f"environment {the_plan['env']['name']} does not exist yet",
                          field="--install", hint="add --create")
        todo += steps["install"]
    for argv in todo:
        try:
            result = _run_step(argv, cwd, INSTALL_TIMEOUT_S, stream)
        except FileNotFoundError as exc:
            result = {"command": shlex.join(argv), "exit_code": 127, "output_tail": str(exc)}
        results.append(result)
        if result["exit_code"] != 0:
            break
    out = dict(the_plan, ran=results, ok=all(r["exit_code"] == 0 for r in results))
    if verify_env and out["ok"]:
        out["verify"] = verify(the_plan["python"], cwd)
        out["ok"] = out["verify"]["ok"]
    return out


def runner(repo: Path, env_name: str | None, python: str | None) -> dict[str, Any]:
    """How `start` runs the command: a conda env, a venv, or an interpreter. Creates nothing."""
    if env_name and python:
        raise CkError("give --env or --python, not both", field="--env")
    if env_name:
        conda = conda_exe()
        if conda and env_name in (envs := conda_envs(conda)):
            return {"kind": "conda", "name": env_name, "prefix": [conda, "run", "--no-capture-output", "-n", env_name],
                    "python": None, "path_prepend": None}
        venv = _venv_path(repo, env_name)
        if venv_python(venv).exists():
            return {"kind": "venv", "name": str(venv), "prefix": [], "python": str(venv_python(venv)),
                    "path_prepend": str(venv_python(venv).parent), "virtual_env": str(venv)}
        known = f"conda envs: {', '.join(sorted(envs))}" if conda else "conda is not installed"
        raise CkError(f"--env {env_name!r} is neither a conda env nor a venv folder", field="--env",
                      hint=f"{known}; create one with `ck launch env REPO --name {env_name} --create`")
    interp = python or sys.executable
    resolved = shutil.which(interp) if os.sep not in interp else interp
    if not resolved or not os.access(resolved, os.X_OK):
        raise CkError(f"interpreter not found or not executable: {interp}", field="--python")
    # Keep the venv path as given (no symlink resolution) so `bin/` next to it stays first on PATH.
    resolved = os.path.abspath(resolved)
    return {"kind": "interpreter", "name": resolved, "prefix": [], "python": resolved,
            "path_prepend": str(Path(resolved).parent)}
