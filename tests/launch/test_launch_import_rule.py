"""Issue 24 item 5: launch-training is its own subpackage. Its modules import only the shared toolkit
(util/, errors.py, templating.py) and each other, never the experiment pipeline; and no module outside
launch/ imports it, except the `ck` entry point that registers `ck launch`. Read from every module's
import statements (ast), function-level imports and TYPE_CHECKING blocks included."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "tools" / "cruijff_kit"
LAUNCH = PACKAGE / "launch"
SHARED = ("cruijff_kit.util", "cruijff_kit.errors", "cruijff_kit.templating", "cruijff_kit.launch")
# the `ck` entry point lists `cruijff_kit.launch.cli` among its subcommand modules
MAY_IMPORT_LAUNCH = {"cli.py"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the file; `from . import x` yields package.x."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from . import detect` imports package.detect; `from ..errors import CkError` names errors.CkError
            out += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return out


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_the_rule_reader_resolves_relative_imports():
    names = {m for _, m in imported_modules(LAUNCH / "diagnose.py")}
    assert {"cruijff_kit.util.procs", "cruijff_kit.launch.detect", "cruijff_kit.launch.failures"} <= names


@pytest.mark.parametrize("path", sorted(LAUNCH.rglob("*.py")), ids=lambda p: p.name)
def test_launch_imports_only_the_shared_toolkit(path):
    wrong = [f"{path.name}:{line} imports {module}" for line, module in imported_modules(path)
             if _within(module, "cruijff_kit") and not any(_within(module, ok) for ok in SHARED)]
    assert not wrong, wrong


def test_nothing_outside_launch_imports_it_but_the_ck_entry_point():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("launch/") or rel in MAY_IMPORT_LAUNCH:
            continue
        wrong += [f"{rel}:{line} imports {module}" for line, module in imported_modules(path)
                  if _within(module, "cruijff_kit.launch")]
    assert not wrong, wrong
