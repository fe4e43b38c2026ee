"""The shape of a repo before its code: one project, or a monorepo of sub-projects.

A monorepo root (several folders each with their own pyproject.toml / setup.py / requirements.txt,
or a uv workspace's members) has no single training command: detect lists the sub-projects and asks
which one instead of guessing a file that may only define functions.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from . import entry_points as ep

PROJECT_FILES = ("pyproject.toml", "setup.py", "setup.cfg", "requirements.txt", "environment.yml")
_CONTAINERS = ("packages", "projects", "apps", "libs", "examples", "services", "models")
_SKIP = {"docs", "doc", "tests", "test", "scripts", "tools", "build", "dist", "node_modules", "site-packages",
         "third_party", "vendor", "assets", "data", "configs", "notebooks"}


def _is_project(folder: Path) -> bool:
    return any((folder / name).is_file() for name in PROJECT_FILES)


def subprojects(repo: Path) -> list[dict[str, Any]]:
    """Folders below `repo` that are projects of their own (one level, or two under packages/, projects/…)."""
    found: dict[Path, str] = {}
    for member in ep.uv_workspace_members(repo):
        found[member] = "uv workspace member"
    try:
        children = sorted(p for p in repo.iterdir() if p.is_dir())
    except OSError:
        children = []
    for child in children:
        if child.name.startswith(".") or child.name in _SKIP or (child / "pyvenv.cfg").exists():
            continue
        if _is_project(child):
            found.setdefault(child, "own " + next(n for n in PROJECT_FILES if (child / n).is_file()))
        elif child.name in _CONTAINERS:
            for grandchild in sorted(p for p in child.iterdir() if p.is_dir()):
                if _is_project(grandchild):
                    found.setdefault(grandchild, "own " + next(n for n in PROJECT_FILES if (grandchild / n).is_file()))
    return [{"path": p.relative_to(repo).as_posix(), "why": why} for p, why in sorted(found.items())]


def monorepo_question(repo: Path, subs: list[dict[str, Any]]) -> str:
    names = ", ".join(s["path"] for s in subs[:8]) + (f" and {len(subs) - 8} more" if len(subs) > 8 else "")
    return (f"{repo.name} holds {len(subs)} projects ({names}) and its README names no training command: "
            f"which one should run? Then `ck launch detect {repo}/<project>`.")
