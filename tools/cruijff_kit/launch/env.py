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
from ..util import procs
from . import entry_points as ep
from .detect import dependency_files
from ..templating import render

VERIFY_TIMEOUT_S = 300
INSTALL_TIMEOUT_S = 3600


def conda_exe() -> str | None:
    return procs.conda_exe()


def conda_envs(conda: str) -> dict[str, str]:
    """name -> prefix of every conda env (the root env is 'base')."""
    envs, problem = procs.conda_envs(conda)
    if problem:
        raise CkError(problem, field="conda")
    return envs


# --------------------------------------------------------------------------- ck's own installation

def ck_prefixes() -> list[Path]:
    """The venv or conda env ck itself runs from (none when ck runs from a base interpreter):
    its bin/ never reaches a run's PATH, and its python never runs the user's code."""
    if sys.prefix == sys.base_prefix and os.environ.get("CONDA_PREFIX") != sys.prefix:
        return []
    return [Path(sys.prefix).resolve()]


def _inside(path: str | Path, prefixes: list[Path]) -> bool:
    try:
        real = Path(path).resolve()
    except OSError:
        return False
    return any(real == p or real.is_relative_to(p) for p in prefixes)


def clean_path(path: str | None = None) -> str:
    """$PATH without ck's own bin/ (and without empty entries)."""
    prefixes = ck_prefixes()
    entries = (os.environ.get("PATH", "") if path is None else path).split(os.pathsep)
    return os.pathsep.join(e for e in entries if e and not _inside(e, prefixes))


def user_python(path: str | None = None) -> str | None:
    """The user's `python` (else `python3`) on PATH, ck's own installation left out."""
    search = clean_path(path)
    for name in ("python", "python3"):
        found = shutil.which(name, path=search)
        if found and not _inside(found, ck_prefixes()):
            return os.path.abspath(found)
    return None


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
        base = python or (shutil.which(f"python{python_version}", path=clean_path()) if python_version
                          else user_python())
        if not base:
            raise CkError(f"no python{python_version} on PATH to create the venv with", field="--python-version",
                          hint="install that Python, pass --python /path/to/python, or omit --python-version")
        create = None if exists else [base, "-m", "venv", str(path)]
        py = [str(venv_python(path))]
        env = {"kind": "venv", "name": str(path), "exists": exists, "prefix": str(path)}
    elif kind == "current":
        interp = python or user_python() or ""
        if not (Path(interp).is_file() and os.access(interp, os.X_OK)):
            raise CkError(f"interpreter not found or not executable: {interp or 'no python on PATH'}",
                          field="--python")
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
    inferred: list[dict[str, Any]] = []
    if not deps:
        # No dependency file: what the entry point imports is the best list there is (one install
        # instead of meeting each missing package in its own failed run).
        from .detect import detect

        try:
            inferred = [d for d in detect(repo)["inferred_dependencies"] if not d["conditional"]]
        except CkError:
            inferred = []
        if inferred:
            install.append([*py, "-m", "pip", "install", *[d["package"] for d in inferred]])
            packages |= {d["package"].lower() for d in inferred}
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
        "inferred_dependencies": inferred,
    }


def run_step(argv: list[str], cwd: str, timeout: int = INSTALL_TIMEOUT_S, stream: bool = False) -> dict[str, Any]:
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
            result = run_step(argv, cwd, INSTALL_TIMEOUT_S, stream)
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


REPO_VENV_DIRS = (".venv", "venv", "env", ".env")


def _venv_runner(venv: Path, source: str) -> dict[str, Any]:
    py = venv_python(venv)
    return {"kind": "venv", "name": str(venv), "source": source, "prefix": [], "python": str(py),
            "path": os.pathsep.join([str(py.parent), clean_path()]), "set_env": {"VIRTUAL_ENV": str(venv)}}


def _conda_runner(conda: str, name: str, prefix: str, source: str) -> dict[str, Any]:
    # `conda run` activates the env (its activate.d scripts included); the pid it reports is killed
    # with the whole group, so its weak signal forwarding does not matter.
    return {"kind": "conda", "name": name, "source": source,
            "prefix": [conda, "run", "--no-capture-output", "-n", name], "python": None,
            "interpreter": str(venv_python(Path(prefix))), "path": clean_path(), "set_env": {}}


def _environment_yml_name(repo: Path) -> str | None:
    for name in ("environment.yml", "environment.yaml"):
        path = repo / name
        if path.is_file():
            import yaml

            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except (yaml.YAMLError, OSError):
                return None
            value = data.get("name") if isinstance(data, dict) else None
            return str(value) if value else None
    return None


def _project_tool(repo: Path) -> str | None:
    """'uv' or 'poetry' when pyproject.toml says the repo is managed by one (and the tool exists)."""
    pyproject = repo / "pyproject.toml"
    if not pyproject.is_file():
        return None
    import tomllib

    try:
        tool = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {})
    except (tomllib.TOMLDecodeError, OSError):
        return None
    if ((repo / "uv.lock").is_file() or "uv" in tool) and shutil.which("uv", path=clean_path()):
        return "uv"
    if ((repo / "poetry.lock").is_file() or "poetry" in tool) and shutil.which("poetry", path=clean_path()):
        return "poetry"
    return None


def _project_interpreter(tool: str, repo: Path) -> str | None:
    """The python a uv / poetry project runs: uv's project venv (the workspace root's .venv for a member,
    UV_PROJECT_ENVIRONMENT when set); poetry's, as `poetry env info --executable` reports it."""
    if tool == "uv":
        root = ep.uv_workspace_root(repo) or repo.resolve()
        custom = os.environ.get("UV_PROJECT_ENVIRONMENT")
        venv = Path(custom) if custom and os.path.isabs(custom) else root / (custom or ".venv")
        return str(venv_python(venv))
    exe = shutil.which("poetry", path=clean_path())
    if not exe:
        return None
    try:
        proc = subprocess.run([exe, "env", "info", "--executable"], cwd=str(repo), capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def runner(repo: Path, env_name: str | None, python: str | None) -> dict[str, Any]:
    """How `start` runs the command. Creates nothing. In order: --python, --env (conda env or venv
    folder), the repo's own environment (REPO/.venv or venv/env, a conda env named in environment.yml
    or after the repo, a uv / poetry project), else the user's python on PATH. Never ck's own
    installation: its bin/ is taken off the run's PATH."""
    if env_name and python:
        raise CkError("give --env or --python, not both", field="--env")
    if python:
        resolved = shutil.which(python, path=clean_path()) if os.sep not in python else python
        if not resolved or not os.access(resolved, os.X_OK):
            raise CkError(f"interpreter not found or not executable: {python}", field="--python")
        # Keep the venv path as given (no symlink resolution) so `bin/` next to it stays first on PATH.
        resolved = os.path.abspath(resolved)
        return {"kind": "interpreter", "name": resolved, "source": "--python", "prefix": [], "python": resolved,
                "path": os.pathsep.join([str(Path(resolved).parent), clean_path()]), "set_env": {}}
    if env_name:
        conda = conda_exe()
        envs = conda_envs(conda) if conda else {}
        if env_name in envs:
            return _conda_runner(conda, env_name, envs[env_name], "--env")
        venv = _venv_path(repo, env_name)
        if venv_python(venv).exists():
            return _venv_runner(venv, "--env")
        known = f"conda envs: {', '.join(sorted(envs))}" if conda else "conda is not installed"
        raise CkError(f"--env {env_name!r} is neither a conda env nor a venv folder", field="--env",
                      hint=f"{known}; create one with `ck launch env REPO --name {env_name} --create`")
    for folder in REPO_VENV_DIRS:
        venv = repo / folder
        if (venv / "pyvenv.cfg").is_file() and venv_python(venv).exists():
            return _venv_runner(venv, f"the repo's own venv ({folder}/)")
    workspace = ep.uv_workspace_root(repo)
    if workspace is not None and workspace != repo.resolve():
        # a uv workspace member runs in the workspace's one venv (`uv sync` at the root makes it)
        venv = workspace / ".venv"
        if (venv / "pyvenv.cfg").is_file() and venv_python(venv).exists():
            return _venv_runner(venv, f"the uv workspace's venv ({venv})")
    conda = conda_exe()
    if conda:
        envs, _problem = procs.conda_envs(conda)
        for name in filter(None, (_environment_yml_name(repo), repo.name)):
            if name in envs and name != "base":
                return _conda_runner(conda, name, envs[name], f"conda env {name!r} (named for the repo)")
    tool = _project_tool(repo)
    if tool:
        prefix = ["uv", "run", "--project", str(repo)] if tool == "uv" else ["poetry", "run"]
        return {"kind": tool, "name": f"{tool} project {repo.name}", "source": f"pyproject.toml ({tool})",
                "prefix": [shutil.which(tool, path=clean_path()), *prefix[1:]], "python": None,
                "interpreter": _project_interpreter(tool, repo), "path": clean_path(), "set_env": {}}
    found = user_python()
    if not found:
        raise CkError("no python on PATH to run the command with (ck's own installation is never used)",
                      field="--env", hint="pass --env NAME (conda env or venv folder) or --python PATH, "
                      "or create the repo's env with `ck launch env REPO --create --install`")
    return {"kind": "interpreter", "name": found, "source": "python on PATH", "prefix": [], "python": found,
            "path": clean_path(), "set_env": {}}


def missing_modules(run: dict[str, Any], modules: list[str], cwd: Path) -> list[str] | None:
    """Which of `modules` the run's interpreter cannot import (find_spec, nothing is imported);
    None when that cannot be asked cheaply (uv / poetry projects) or the check itself failed."""
    if not modules or run["kind"] in ("uv", "poetry"):
        return [] if not modules else None
    code = ("import importlib.util as u, json, sys; "
            "print(json.dumps([m for m in sys.argv[1:] if u.find_spec(m) is None]))")
    argv = [*run["prefix"], "python"] if run["kind"] == "conda" else [run["python"]]
    env = {**os.environ, "PATH": run["path"], **run["set_env"]}
    try:
        proc = subprocess.run([*argv, "-c", code, *modules], cwd=str(cwd), capture_output=True, text=True,
                              timeout=120, env=env)
        return json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def pip_install_argv(run: dict[str, Any], packages: list[str]) -> list[str]:
    """pip into the run's own environment (never ck's)."""
    if run["kind"] == "conda":
        return [*run["prefix"], "python", "-m", "pip", "install", *packages]
    if run["kind"] == "uv":
        return [run["prefix"][0], "add", "--project", run["prefix"][3], *packages]
    if run["kind"] == "poetry":
        return [run["prefix"][0], "add", *packages]
    return [run["python"], "-m", "pip", "install", *packages]
