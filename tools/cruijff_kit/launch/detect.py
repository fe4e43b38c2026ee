"""What a training repo contains, read from its files' ASTs (never by grepping source text).

`detect(repo)` answers the way a person reads a repo: the README's own training command first
(readme.py); at a monorepo root the sub-projects and a question, not a guess (layout.py); else the
entry points (declared ones: console scripts, @hydra.main, LightningCLI; scripts with a `__main__`
guard or top-level code over modules that only define functions; conventional names), the subcommand
of a dispatching CLI, the dependency files in the order they would be installed, the training
framework, whether wandb is already used (and the flag that turns it on), whether the code is
distributed, the flags (argparse, HfArgumentParser, configurator, tyro, click, typer; each with the
file:line that defines it), a suggested command and how sure detect is (`confidence`, `question`). Facts carry `file:line` evidence so an agent can show why.
"""
from __future__ import annotations

import ast
import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CkError
from ..util import procs
from . import cli_flags, layout, readme
from . import entry_points as ep

# The seed's order, which is also the ranking among entry points with conventional names.
CONVENTIONAL_ENTRY_POINTS = ("train.py", "main.py", "run.py", "run_training.py")
# The seed's install priority.
DEPENDENCY_FILES = ("requirements.txt", "pyproject.toml", "setup.py", "environment.yml", "environment.yaml")

_SKIP_DIRS = {"__pycache__", "node_modules", "site-packages", "build", "dist", "tests", "test", "docs",
              "wandb", "outputs", "checkpoints"}
_SKIP_FILES = {"setup.py", "conftest.py", "__init__.py"}
_MAX_DEPTH = 2          # repo root plus two folder levels: src/pkg/train.py is found
_MAX_FILES = 400        # a monorepo should not make detect slow
_MAX_LOCAL_IMPORTS = 25

_OPTIMIZER_CLASSES = {"SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam",
                      "LBFGS", "Adafactor"}
FRAMEWORKS = ("hf_trainer", "lightning", "keras", "pytorch")


@dataclass
class FileFacts:
    """Names and calls of one Python file, with aliases resolved to dotted module paths."""

    path: Path
    rel: str
    tree: ast.Module
    aliases: dict[str, str] = field(default_factory=dict)   # local name -> qualified name
    imports: list[tuple[str, int]] = field(default_factory=list)
    main_guard: ast.If | None = None

    def qualify(self, node: ast.AST) -> str | None:
        """`pl.Trainer` -> `pytorch_lightning.Trainer` (None when not a plain name/attribute chain)."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        parts.append(self.aliases.get(node.id, node.id))
        return ".".join(reversed(parts))

    def where(self, node: ast.AST) -> str:
        return f"{self.rel}:{getattr(node, 'lineno', 0)}"


def parse_file(path: Path, repo: Path) -> FileFacts:
    source = path.read_bytes()
    tree = ast.parse(source, filename=str(path))
    facts = FileFacts(path=path, rel=path.relative_to(repo).as_posix(), tree=tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                # `import a.b` binds `a`; `import a.b as c` binds c -> a.b
                facts.aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
                facts.imports.append((alias.name, node.lineno))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            facts.imports.append((node.module, node.lineno))
            for alias in node.names:
                facts.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            facts.imports.append(("." * node.level + (node.module or ""), node.lineno))
    for stmt in tree.body:
        if is_main_guard(stmt):
            facts.main_guard = stmt
    return facts


def is_main_guard(stmt: ast.stmt) -> bool:
    if not isinstance(stmt, ast.If) or not isinstance(stmt.test, ast.Compare):
        return False
    test = stmt.test
    sides = [test.left, *test.comparators]
    return (len(sides) == 2 and isinstance(test.ops[0], ast.Eq)
            and any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
            and any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides))


# --------------------------------------------------------------------------- framework facts

def framework_evidence(files: list[FileFacts]) -> dict[str, list[str]]:
    """Every framework with the AST facts that point to it."""
    found: dict[str, list[str]] = {name: [] for name in FRAMEWORKS}
    for facts in files:
        imported = {mod for mod, _ in facts.imports}
        uses_torch = any(m == "torch" or m.startswith("torch.") for m in imported)
        for name, q in facts.aliases.items():
            # Hydra apps build the Trainer from config (hydra.utils.instantiate): importing it is the sign
            if _is_lightning(q) and q.rpartition(".")[2] == "Trainer":
                found["lightning"].append(f"{facts.rel} imports {q}")
        for node in ast.walk(facts.tree):
            if isinstance(node, ast.ClassDef):
                for base in node.bases:
                    q = facts.qualify(base) or ""
                    if q.endswith("LightningModule") and _is_lightning(q):
                        found["lightning"].append(f"{facts.where(node)} class {node.name}({q})")
                    elif q.startswith("transformers.") and q.endswith("Trainer"):
                        found["hf_trainer"].append(f"{facts.where(node)} class {node.name}({q})")
            if not isinstance(node, ast.Call):
                continue
            q = facts.qualify(node.func) or ""
            if _is_hf_trainer(q):
                found["hf_trainer"].append(f"{facts.where(node)} {q}(…)")
            elif _is_lightning(q) and q.endswith("Trainer"):
                found["lightning"].append(f"{facts.where(node)} {q}(…)")
            elif isinstance(node.func, ast.Attribute) and node.func.attr in ("fit", "compile") and _uses_keras(imported):
                found["keras"].append(f"{facts.where(node)} .{node.func.attr}(…) with keras imported")
            elif isinstance(node.func, ast.Attribute) and node.func.attr == "backward" and uses_torch:
                found["pytorch"].append(f"{facts.where(node)} .backward() with torch imported")
    return found


def _is_hf_trainer(q: str) -> bool:
    head, _, tail = q.rpartition(".")
    return (head.split(".")[0] in ("transformers", "trl")
            and (tail.endswith("Trainer") or tail in ("TrainingArguments", "Seq2SeqTrainingArguments")
                 or tail.endswith("Config") and head.split(".")[0] == "trl"))


def _is_lightning(q: str) -> bool:
    return q.split(".")[0] in ("pytorch_lightning", "lightning")


def _uses_keras(imported: set[str]) -> bool:
    return any(m == "keras" or m.startswith("keras.") or m.startswith("tensorflow") for m in imported)


def pick_framework(evidence: dict[str, list[str]]) -> str | None:
    # A Trainer-based script also calls .backward() nowhere, but a Lightning module may import
    # torch and define training_step: the higher-level framework decides how wandb is attached.
    for name in FRAMEWORKS:
        if evidence[name]:
            return name
    return None


def wandb_evidence(files: list[FileFacts]) -> list[str]:
    out: list[str] = []
    for facts in files:
        out += [f"{facts.rel}:{line} import {mod}" for mod, line in facts.imports
                if mod == "wandb" or mod.startswith("wandb.")]
        for node in ast.walk(facts.tree):
            if isinstance(node, ast.keyword) and node.arg == "report_to" and _mentions_wandb(node.value):
                out.append(f"{facts.where(node.value)} report_to includes 'wandb'")
            elif isinstance(node, ast.Call):
                q = facts.qualify(node.func) or ""
                if q.rpartition(".")[2] in ("WandbLogger", "WandbCallback", "WandbMetricsLogger"):
                    out.append(f"{facts.where(node)} {q}(…)")
    return out


def _mentions_wandb(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value in ("wandb", "all")
    if isinstance(node, (ast.List, ast.Tuple)):
        return any(_mentions_wandb(e) for e in node.elts)
    return False


def distributed_evidence(files: list[FileFacts]) -> list[str]:
    out: list[str] = []
    for facts in files:
        for node in ast.walk(facts.tree):
            if isinstance(node, ast.Call):
                q = facts.qualify(node.func) or ""
                tail = q.rpartition(".")[2]
                if tail in ("init_process_group", "DistributedDataParallel", "Accelerator", "FullyShardedDataParallel"):
                    out.append(f"{facts.where(node)} {q}(…)")
            elif isinstance(node, ast.Constant) and node.value in ("LOCAL_RANK", "RANK", "WORLD_SIZE"):
                out.append(f"{facts.where(node)} reads {node.value}")
    return out


# --------------------------------------------------------------------------- argparse

def argparse_flags(files: list[FileFacts]) -> list[dict[str, Any]]:
    flags: list[dict[str, Any]] = []
    for facts in files:
        for node in ast.walk(facts.tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "add_argument"):
                continue
            names = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if not names:
                continue
            entry: dict[str, Any] = {"flags": names, "where": facts.where(node)}
            for kw in node.keywords:
                if kw.arg in ("type", "action"):
                    entry[kw.arg] = _literal_or_source(facts, kw.value, names_as_text=True)
                elif kw.arg in ("default", "required", "help", "choices", "nargs", "dest"):
                    entry[kw.arg] = _literal_or_source(facts, kw.value)
            long = [n for n in names if n.startswith("--")]
            entry.setdefault("dest", (long[0] if long else names[0]).lstrip("-").replace("-", "_"))
            entry["positional"] = not names[0].startswith("-")
            flags.append(entry)
    return flags


def _literal_or_source(facts: FileFacts, node: ast.AST, names_as_text: bool = False) -> Any:
    if names_as_text and isinstance(node, (ast.Name, ast.Attribute)):
        return facts.qualify(node)
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return ast.unparse(node)


def hf_argument_dataclasses(files: list[FileFacts]) -> list[dict[str, Any]]:
    """Flags of dataclasses handed to transformers.HfArgumentParser (each field is `--field`)."""
    classes = {n.name: (f, n) for f in files for n in ast.walk(f.tree) if isinstance(n, ast.ClassDef)}
    flags: list[dict[str, Any]] = []
    for facts in files:
        for node in ast.walk(facts.tree):
            if not (isinstance(node, ast.Call) and (facts.qualify(node.func) or "").endswith("HfArgumentParser")):
                continue
            targets = node.args[0].elts if node.args and isinstance(node.args[0], (ast.Tuple, ast.List)) else node.args[:1]
            for target in targets:
                if not isinstance(target, ast.Name) or target.id not in classes:
                    continue
                owner, cls = classes[target.id]
                for stmt in cls.body:
                    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                        default = _dataclass_default(owner, stmt.value)
                        flags.append({"flags": [f"--{stmt.target.id}"], "dest": stmt.target.id,
                                      "type": ast.unparse(stmt.annotation), "default": default,
                                      "required": stmt.value is None, "positional": False,
                                      "where": owner.where(stmt)})
    return flags


def _dataclass_default(facts: FileFacts, value: ast.AST | None) -> Any:
    if value is None:
        return None
    if isinstance(value, ast.Call) and (facts.qualify(value.func) or "").endswith("field"):
        for kw in value.keywords:
            if kw.arg == "default":
                return _literal_or_source(facts, kw.value)
        return None
    return _literal_or_source(facts, value)


# --------------------------------------------------------------------------- dependencies from imports

# import name -> pip package, where they differ
PIP_NAMES = {"cv2": "opencv-python", "PIL": "pillow", "sklearn": "scikit-learn", "yaml": "pyyaml",
             "skimage": "scikit-image", "Crypto": "pycryptodome", "bs4": "beautifulsoup4",
             "attr": "attrs", "dotenv": "python-dotenv", "google.protobuf": "protobuf",
             "hydra": "hydra-core", "omegaconf": "omegaconf", "lightning": "lightning",
             "pytorch_lightning": "pytorch-lightning", "tensorflow": "tensorflow", "jax": "jax[cpu]",
             "sentencepiece": "sentencepiece", "huggingface_hub": "huggingface-hub", "wx": "wxPython",
             "Levenshtein": "python-Levenshtein", "fitz": "pymupdf", "docx": "python-docx",
             "rootutils": "rootutils"}


def pip_name(module: str) -> str:
    top = module.split(".")[0]
    return PIP_NAMES.get(module) or PIP_NAMES.get(top) or top


def _conditional_imports(tree: ast.Module, lazy_functions: bool = False) -> set[int]:
    """ids of import nodes under an `if` or a `try` (optional: `if wandb_log: import wandb`) and,
    with lazy_functions (modules the entry point imports), inside functions (nanoGPT's model.py
    imports transformers only in from_pretrained)."""
    out: set[int] = set()

    def visit(node: ast.AST, guarded: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)) and guarded:
                out.add(id(child))
            visit(child, guarded or isinstance(child, (ast.If, ast.Try))
                  or (lazy_functions and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))))

    visit(tree, False)
    return out


def _is_local(module: str, repo: Path, files: list[FileFacts]) -> bool:
    top = module.split(".")[0]
    for root in {repo, repo / "src", *(f.path.parent for f in files)}:
        if (root / f"{top}.py").is_file() or (root / top).is_dir():
            return True
    return False


def inferred_dependencies(files: list[FileFacts], repo: Path) -> list[dict[str, Any]]:
    """Third-party packages the analyzed files import (stdlib and repo modules left out), each with
    where it is imported and whether only conditionally (inside an if / try)."""
    import sys

    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    found: dict[str, dict[str, Any]] = {}
    for i, facts in enumerate(files):
        conditional = _conditional_imports(facts.tree, lazy_functions=i > 0)
        for node in ast.walk(facts.tree):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in stdlib or _is_local(module, repo, files):
                    continue
                entry = found.setdefault(top, {"import": top, "package": pip_name(module),
                                               "where": facts.where(node), "conditional": True})
                if id(node) not in conditional and entry["conditional"]:
                    entry.update(conditional=False, where=facts.where(node))
    return sorted(found.values(), key=lambda d: (d["conditional"], d["import"]))


# --------------------------------------------------------------------------- dependency files

def dependency_files(repo: Path) -> list[dict[str, Any]]:
    """Existing dependency files in install priority, each with the packages it names."""
    out = []
    for name in DEPENDENCY_FILES:
        path = repo / name
        if path.is_file():
            try:
                packages = _packages(path)
                problem = None
            except Exception as exc:  # a broken dep file is reported, not fatal to detection
                packages, problem = [], f"{type(exc).__name__}: {exc}"
            entry: dict[str, Any] = {"file": name, "packages": packages}
            if problem:
                entry["problem"] = problem
            out.append(entry)
    return out


_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _packages(path: Path) -> list[str]:
    if path.name == "requirements.txt":
        names = []
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("-"):
                continue
            match = _REQ_NAME.match(line)
            if match:
                names.append(match.group(1))
        return names
    if path.name == "pyproject.toml":
        import tomllib

        data = tomllib.loads(path.read_text(encoding="utf-8"))
        deps = list(data.get("project", {}).get("dependencies", []))
        poetry = data.get("tool", {}).get("poetry", {}).get("dependencies", {})
        deps += [k for k in poetry if k != "python"]
        return [m.group(1) for d in deps if (m := _REQ_NAME.match(d))]
    if path.name == "setup.py":
        tree = ast.parse(path.read_bytes(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    if kw.arg == "install_requires":
                        try:
                            deps = ast.literal_eval(kw.value)
                        except ValueError:
                            return []
                        return [m.group(1) for d in deps if (m := _REQ_NAME.match(d))]
        return []
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    names = []
    for dep in data.get("dependencies", []) or []:
        if isinstance(dep, str) and (m := _REQ_NAME.match(dep)):
            names.append(m.group(1))
        elif isinstance(dep, dict):
            names += [m.group(1) for d in dep.get("pip", []) if (m := _REQ_NAME.match(str(d)))]
    return names


# --------------------------------------------------------------------------- entry points

def _python_files(repo: Path) -> list[Path]:
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            return
        for entry in entries:
            if len(found) >= _MAX_FILES:
                return
            if entry.is_dir():
                if (depth < _MAX_DEPTH and not entry.name.startswith(".") and entry.name not in _SKIP_DIRS
                        and not (entry / "pyvenv.cfg").exists() and not (entry / "conda-meta").exists()):
                    walk(entry, depth + 1)
            elif entry.suffix == ".py" and entry.name not in _SKIP_FILES and not entry.name.startswith("test_"):
                found.append(entry)

    walk(repo, 0)
    return found


def _local_imports(facts: FileFacts, repo: Path) -> list[Path]:
    """Repo files that `facts` imports (so a loop in model.py counts for train.py)."""
    out = []
    for mod, _ in facts.imports:
        if mod.startswith("."):
            base = facts.path.parent
            mod = mod.lstrip(".")
        else:
            base = None
        parts = [p for p in mod.split(".") if p]
        if not parts:
            continue
        roots = [base] if base else [facts.path.parent, repo, repo / "src"]
        for root in roots:
            candidate = root.joinpath(*parts)
            for path in (candidate.with_suffix(".py"), candidate / "__init__.py"):
                if path.is_file() and path != facts.path:
                    out.append(path)
    return out



def _facts(path: Path, repo: Path, cache: dict) -> "FileFacts | str":
    """Parse each file once; a file that cannot be parsed is remembered as its error text."""
    if path not in cache:
        try:
            cache[path] = parse_file(path, repo)
        except (SyntaxError, ValueError, OSError) as exc:
            cache[path] = f"{path.relative_to(repo).as_posix()}: cannot parse: {exc}"
    return cache[path]

def analyze(entry: Path, repo: Path, cache: dict[Path, FileFacts | str]) -> tuple[list[FileFacts], list[str]]:
    """The entry file plus the repo modules it imports, transitively (bounded)."""
    todo, seen, files, errors = [entry], set(), [], []
    while todo and len(seen) < _MAX_LOCAL_IMPORTS:
        path = todo.pop(0)
        if path in seen:
            continue
        seen.add(path)
        facts = _facts(path, repo, cache)
        if isinstance(facts, str):
            errors.append(facts)
            continue
        files.append(facts)
        todo += _local_imports(facts, repo)
    return files, errors


def detect(repo: str | Path, entry: str | None = None) -> dict[str, Any]:
    repo = Path(repo).expanduser()
    if not repo.is_dir():
        raise CkError(f"repository not found: {repo} is not a directory", field="REPO",
                      hint="pass the path of the folder that holds the training code")
    repo = repo.resolve()
    cache: dict[Path, FileFacts | str] = {}
    candidates: list[dict[str, Any]] = []

    if entry:
        path = (repo / entry).resolve()
        if not path.is_file() or path.suffix != ".py" or not path.is_relative_to(repo):
            raise CkError(f"entry point {entry!r} is not a .py file in {repo}", field="--entry")
        paths = [path]
    else:
        paths = _python_files(repo)

    scripts = ep.console_scripts(repo)
    script_files = {s["file"]: s["name"] for s in scripts if s["file"]}
    readme_cmds = [] if entry else readme.commands(repo, {s["name"]: s["file"] for s in scripts})
    # the README's training command; else its first command that is not evaluation/setup
    from_readme = next((c for c in readme_cmds if c["score"] >= 0), None)
    subs = [] if entry else layout.subprojects(repo)
    if from_readme is None and len(subs) >= 2 and not _root_runs_something(repo, cache, scripts):
        return _monorepo(repo, subs, scripts)
    for rel in list(script_files) + ([from_readme["script"]] if from_readme else []):
        # console-script targets and the README's script count even where the walk does not reach
        if rel and (repo / rel) not in paths and not entry:
            paths.append(repo / rel)
    for path in paths:
        facts = _facts(path, repo, cache)
        rel = path.relative_to(repo).as_posix()
        conventional = path.name in CONVENTIONAL_ENTRY_POINTS
        guarded = not isinstance(facts, str) and facts.main_guard is not None
        hydra = ep.hydra_main(facts, repo) if not isinstance(facts, str) else None
        cli = ep.lightning_cli(facts) if not isinstance(facts, str) else None
        in_readme = bool(from_readme and from_readme["script"] == rel)
        if not (entry or conventional or guarded or rel in script_files or hydra or in_readme):
            continue
        runs = not isinstance(facts, str) and (guarded or runs_code(facts.tree))
        candidates.append({"path": rel, "_path": path, "conventional": conventional, "main_guard": guarded,
                           "console_script": script_files.get(rel), "hydra": hydra is not None,
                           "lightning_cli": cli is not None, "readme": in_readme,
                           "defines_only": not runs and not script_files.get(rel) and hydra is None,
                           "_hydra": hydra, "_cli": cli})

    if not candidates:
        raise CkError(
            f"no entry point found in {repo}",
            field="REPO",
            hint="looked for " + ", ".join(CONVENTIONAL_ENTRY_POINTS)
            + " and scripts with `if __name__ == \"__main__\":`; pass --entry FILE to name one",
        )

    parse_errors: set[str] = set()
    for cand in candidates:
        files, errors = analyze(cand["_path"], repo, cache)
        parse_errors.update(errors)
        cand["_files"] = files
        cand["framework"] = pick_framework(framework_evidence(files))

    def rank(cand: dict[str, Any]) -> tuple:
        name = Path(cand["path"]).name
        conv = CONVENTIONAL_ENTRY_POINTS.index(name) if cand["conventional"] else len(CONVENTIONAL_ENTRY_POINTS)
        # The README's command first (what a person would run); then a file that runs something over
        # one that only defines functions; a declared entry (console script, @hydra.main, LightningCLI)
        # beats a module whose __main__ block only builds an object (src/models/x_module.py); then
        # training code beats a helper script; then the conventional names; then the shallowest file.
        declared = bool(cand["console_script"] or cand["hydra"] or cand["lightning_cli"])
        return (not cand["readme"], cand["defines_only"], not declared, cand["framework"] is None,
                not cand["conventional"], conv, "train" not in name, cand["path"].count("/"), cand["path"])

    candidates.sort(key=rank)
    best = candidates[0]
    files = best["_files"]
    evidence = framework_evidence(files)
    dispatch = cli_flags.subcommands(files[0]) if files else []
    subcommand = _pick_subcommand(dispatch, from_readme)
    flags = _own_flags(argparse_flags(files) + hf_argument_dataclasses(files) + ep.configurator_flags(files[0])
                       + cli_flags.tyro_flags(files) + cli_flags.click_typer_flags(files),
                       files[0], dispatch, subcommand, repo)
    deps = dependency_files(repo)
    hydra = best["_hydra"]
    wandb = {"used": bool(ev := wandb_evidence(files)), "evidence": ev, **ep.wandb_switches(files, flags)}
    hydra_wb = ep.hydra_wandb(hydra, repo) if hydra else None
    if hydra_wb:
        wandb.update({k: v for k, v in hydra_wb.items() if k != "evidence"}, available=True)
        wandb["evidence"] = wandb["evidence"] + hydra_wb["evidence"]
    if wandb["used"] and wandb["enabled_by_default"] is None:
        wandb["enabled_by_default"] = True
    dist = distributed_evidence(files)
    gpus = gpu_count()
    command, notes = suggest(best["path"], flags, dist, gpus=gpus, hydra=hydra, lightning_cli=best["_cli"],
                             accelerate=any("Accelerator" in e for e in dist),
                             console_script=None if best["main_guard"] else best["console_script"],
                             subcommand=subcommand)
    confidence, question = _confidence(best, candidates, from_readme)
    if from_readme and best["readme"]:
        command = from_readme["command"]
        notes.insert(0, f"the README's own command ({from_readme['file']}:{from_readme['line']})")
    if dispatch:
        notes.append(f"{best['path']} dispatches to subcommands ({', '.join(d['name'] for d in dispatch)})"
                     + (f"; flags shown are {subcommand}'s" if subcommand else ""))

    return {
        "repo": str(repo),
        "entry_point": best["path"],
        "entry_points": [{k: v for k, v in c.items() if not k.startswith("_")} for c in candidates],
        "framework": pick_framework(evidence),
        "framework_evidence": {k: v for k, v in evidence.items() if v},
        "dependencies": deps,
        "install_order": [d["file"] for d in deps],
        "inferred_dependencies": inferred_dependencies(files, repo),
        "wandb": wandb,
        "distributed": {"used": bool(dist), "evidence": dist},
        "args": flags,
        "console_scripts": scripts,
        "subcommands": dispatch,
        "subcommand": subcommand,
        "hydra": hydra,
        "lightning_cli": best["_cli"],
        "gpus_here": gpus,
        "analyzed_files": [f.rel for f in files],
        "parse_errors": sorted(parse_errors),
        "readme_commands": readme_cmds[:10],
        "subprojects": subs,
        "suggested_command": command,
        "suggestion_notes": notes,
        "confidence": confidence,
        "question": question,
    }


def runs_code(tree: ast.Module) -> bool:
    """Whether importing/running the file does work at top level (nanoGPT's train.py has no __main__
    guard but trains), as opposed to a module that only defines functions, classes and constants."""
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Pass)):
            continue
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # docstring
        if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            value = stmt.value
            if value is None or not any(isinstance(n, ast.Call) for n in ast.walk(value)):
                continue
            return True
        if isinstance(stmt, ast.If) and not is_main_guard(stmt) and all(
                isinstance(s, (ast.Import, ast.ImportFrom, ast.Assign, ast.Pass, ast.FunctionDef)) for s in stmt.body):
            continue  # `if sys.version_info …: import x`
        if isinstance(stmt, ast.Try) and all(isinstance(s, (ast.Import, ast.ImportFrom, ast.Assign, ast.Pass))
                                             for s in stmt.body):
            continue  # optional imports
        return True
    return False


def _root_runs_something(repo: Path, cache: dict, scripts: list[dict[str, Any]]) -> bool:
    """A project at the root itself (a script there that runs, or a console script of its own) is not a
    monorepo root, whatever its examples/ or packages/ hold."""
    if any(s["file"] and not s.get("member") for s in scripts):
        return True
    for path in sorted(repo.glob("*.py")):
        if path.name in _SKIP_FILES or path.name.startswith("test_"):
            continue
        facts = _facts(path, repo, cache)
        if not isinstance(facts, str) and (facts.main_guard is not None or runs_code(facts.tree)):
            return True
    return False


def _pick_subcommand(dispatch: list[dict[str, Any]], from_readme: dict[str, Any] | None) -> str | None:
    names = [d["name"] for d in dispatch]
    if from_readme and from_readme.get("subcommand") in names:
        return from_readme["subcommand"]
    return next((n for n in names if n in ("train", "fit", "finetune", "pretrain")), None)


def _own_flags(flags: list[dict[str, Any]], entry: FileFacts, dispatch: list[dict[str, Any]],
               subcommand: str | None, repo: Path) -> list[dict[str, Any]]:
    """A dispatching CLI's flags are those of the subcommand it runs, not every script's it imports."""
    if not dispatch or subcommand is None:
        return flags
    chosen = next(d for d in dispatch if d["name"] == subcommand)
    if chosen["kind"] == "command":
        return [f for f in flags if f.get("command") in (None, subcommand) and f["where"].startswith(entry.rel + ":")
                or f.get("command") == subcommand]
    if chosen["kind"] == "dispatch" and chosen.get("target"):
        module = chosen["target"].rpartition(".")[0]
        target_file = ep._module_file(repo, module) or ep._module_file(repo, chosen["target"])
        own = [f for f in flags if target_file and f["where"].startswith(target_file + ":")]
        return own or [f for f in flags if f["where"].startswith(entry.rel + ":")]
    return [f for f in flags if f["where"].startswith(entry.rel + ":")]


def _confidence(best: dict[str, Any], candidates: list[dict[str, Any]],
                from_readme: dict[str, Any] | None) -> tuple[str, str | None]:
    """How sure detect is of the entry point, and the question to ask the user when it is not."""
    if from_readme and best["readme"]:
        return "readme", None
    if best["defines_only"]:
        return "ask", (f"{best['path']} only defines functions (no `if __name__ == \"__main__\":` block, no top-level "
                       "code): running it trains nothing. Which command trains? (the README's, a console script, "
                       "or --entry FILE)")
    if best["console_script"] or best["hydra"] or best["lightning_cli"]:
        return "declared", None
    runners = [c for c in candidates if not c["defines_only"] and c["framework"] is not None]
    if len(runners) > 1 and not best["conventional"]:
        names = ", ".join(c["path"] for c in runners[:5])
        return "guess", f"several scripts train ({names}); detect picked {best['path']}: which one should run?"
    return "conventional" if best["conventional"] else "guarded", None


def _monorepo(repo: Path, subs: list[dict[str, Any]], scripts: list[dict[str, Any]]) -> dict[str, Any]:
    """At a monorepo root: the projects, each with its README's training command, and a question."""
    for sub in subs:
        cmds = readme.commands(repo / sub["path"], {s["name"]: s["file"] for s in ep.console_scripts(repo / sub["path"])})
        best = next((c for c in cmds if c["training"]), None)
        sub["readme_command"] = ({"command": best["command"], "file": f"{sub['path']}/{best['file']}",
                                  "line": best["line"]} if best else None)
    question = layout.monorepo_question(repo, subs)
    return {
        "repo": str(repo), "entry_point": None, "entry_points": [], "framework": None, "framework_evidence": {},
        "dependencies": dependency_files(repo), "install_order": [d["file"] for d in dependency_files(repo)],
        "inferred_dependencies": [], "wandb": {"used": False, "evidence": [], "enabled_by_default": None,
                                               "enable": None, "project": None, "project_switch": None},
        "distributed": {"used": False, "evidence": []}, "args": [], "console_scripts": scripts,
        "subcommands": [], "subcommand": None, "hydra": None, "lightning_cli": None, "gpus_here": gpu_count(),
        "analyzed_files": [], "parse_errors": [], "readme_commands": [], "subprojects": subs,
        "suggested_command": None, "suggestion_notes": [], "confidence": "ask", "question": question,
    }


def gpu_count() -> int:
    """GPUs a run started here would see (CUDA_VISIBLE_DEVICES first, else nvidia-smi)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([g for g in visible.split(",") if g.strip() and g.strip() != "-1"])
    return len(procs.query_gpus(("index",), timeout=15).rows)


def suggest(entry: str, flags: list[dict[str, Any]], distributed: list[str], *, gpus: int,
            hydra: dict[str, Any] | None = None, lightning_cli: str | None = None,
            accelerate: bool = False, console_script: str | None = None,
            subcommand: str | None = None) -> tuple[str, list[str]]:
    """The command to run `entry` here, and why it looks the way it does."""
    notes: list[str] = []
    words = ["python", entry]
    if console_script:
        # no __main__ block: `python file.py` would define main() and exit; the script runs it
        words = [console_script]
        notes.append(f"{entry} has no __main__ block: run its console script {console_script} "
                     "(installed into the run's env by `pip install -e .`, i.e. `ck launch env REPO --install`)")
    if subcommand:
        words.append(subcommand)
    for flag in flags:
        if flag.get("positional"):
            words.append(flag["dest"].upper())
        elif flag.get("required") is True:
            words += [flag["flags"][-1], flag["dest"].upper()]
    if lightning_cli:
        words.append("fit")
        notes.append(f"LightningCLI ({lightning_cli}): subcommand fit; options as --trainer.max_epochs=N")
    if hydra:
        trainer = hydra["groups"].get("trainer", [])
        if gpus == 0 and "cpu" in trainer and hydra["defaults"].get("trainer") != "cpu":
            words.append("trainer=cpu")
            notes.append("no GPU here: Hydra override trainer=cpu")
        elif gpus > 0 and "gpu" in trainer and hydra["defaults"].get("trainer") != "gpu":
            words.append("trainer=gpu")
        notes.append(f"Hydra app ({hydra['where']}): overrides are key=value words, e.g. "
                     + " ".join(f"{g}={opts[0]}" for g, opts in list(hydra["groups"].items())[:2]))
    device = next((f for f in flags if f.get("style") == "key=value" and f["dest"] == "device"), None)
    if gpus == 0 and device and str(device.get("default", "")).startswith("cuda"):
        words.append("--device=cpu")
        notes.append(f"no GPU here: --device=cpu ({device['where']} defaults to {device['default']!r})")
    command = shlex.join(words)
    if distributed:
        if gpus > 1:
            launcher = (f"accelerate launch --num_processes {gpus} " if accelerate
                        else f"torchrun --standalone --nproc_per_node={gpus} ")
            command = launcher + (command.removeprefix("python ") if command.startswith("python ")
                                  else command)
            notes.append(f"distributed code and {gpus} GPUs: one process per GPU")
        else:
            notes.append(f"distributed-capable code, {'no GPU' if gpus == 0 else 'one GPU'} here: one process "
                         "(if it calls init_process_group unconditionally, prefix "
                         "`torchrun --standalone --nproc_per_node=1`)")
    return command, notes
