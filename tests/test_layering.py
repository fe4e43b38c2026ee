"""The package's layers, read from the source (every import, function-level ones included, so none
can hide a cycle): state/ reads what disk says and imports nothing above util/, errors and the
executor vocabulary; settings.py (the one settings schema) nothing but util/; finetune/ (model
families, trainers) nothing above state/; experiment/ (the plan model) nothing above finetune/;
run/ and analyze/ never import each other. Reading disk stays in state/: no YAML parsing, epoch-directory globbing
or job-state literals elsewhere (launch/ reads other people's repos and is its own subpackage)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "tools" / "cruijff_kit"

_ABOVE_PLAN = {"scaffold", "run", "analyze", "commands", "doctor", "setup", "evaluate", "launch", "demo", "cli"}
FORBIDDEN = {
    "settings": {"experiment", "finetune", "state", "localconfig", "executors"} | _ABOVE_PLAN,
    "state": {"experiment", "finetune", "localconfig", "blueprints", "tiny_model"} | _ABOVE_PLAN,
    # the families / trainer registry and the trainers' configs sit below the plan model
    "finetune": {"experiment"} | _ABOVE_PLAN,
    "experiment": {"executors"} | _ABOVE_PLAN,
    "run": {"analyze", "scaffold", "commands", "doctor", "setup", "launch", "demo", "cli"},
    "analyze": {"run", "scaffold", "commands", "doctor", "setup", "launch", "demo", "cli"},
}


def _modules():
    for path in sorted(PKG.rglob("*.py")):
        if "_templates" in path.parts:
            continue
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield path, parts, package


def _imports(path: Path, package: list[str]):
    """(line, top-level subpackage or module imported) for every internal import in the file."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package[: len(package) - (node.level - 1)]
            target = base + (node.module.split(".") if node.module else [])
        elif (node.module or "").split(".")[0] == "cruijff_kit":
            target = node.module.split(".")
        else:
            continue
        if len(target) == 1:  # from cruijff_kit import x
            for alias in node.names:
                yield node.lineno, alias.name
        else:
            yield node.lineno, target[1]


def test_layers_import_only_downwards():
    bad = []
    for path, parts, package in _modules():
        layer = parts[1] if len(parts) > 1 else ""
        for line, target in _imports(path, package):
            if target in FORBIDDEN.get(layer, ()):
                bad.append(f"{path.relative_to(PKG)}:{line}: {layer} imports {target}")
    assert not bad, "\n".join(bad)


PATTERNS = {
    "YAML parsing": re.compile(r"\byaml\.(safe_load|load|full_load|unsafe_load)\("),
    "epoch directory glob": re.compile(r"""glob\(\s*["']epoch_"""),
    "job-state literal": re.compile(r"""["'](COMPLETED|FAILED|RUNNING|PENDING|OUT_OF_MEMORY|TIMEOUT|CANCELLED)["']"""),
}
ALLOWED = {"state", "executors", "launch"}


def test_disk_is_read_in_the_state_layer():
    bad = []
    for path, parts, _package in _modules():
        if len(parts) > 1 and parts[1] in ALLOWED:
            continue
        for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for what, pattern in PATTERNS.items():
                if pattern.search(text):
                    bad.append(f"{path.relative_to(PKG)}:{n}: {what}: {text.strip()[:80]}")
    assert not bad, "\n".join(bad)


def test_the_rules_see_a_violation(tmp_path):
    """The checker itself: a function-level import from analyze to run is found."""
    mod = tmp_path / "cruijff_kit" / "analyze" / "x.py"
    mod.parent.mkdir(parents=True)
    mod.write_text("def f():\n    from ..run.plan import plan_experiment\n")
    assert list(_imports(mod, ["cruijff_kit", "analyze"])) == [(2, "run")]
