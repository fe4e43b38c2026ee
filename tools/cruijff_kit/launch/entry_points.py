"""How real repos say where training starts and how it is switched: console scripts (setup.py /
pyproject [project.scripts]), Hydra (`@hydra.main`, its config dir and groups), Lightning CLI,
nanoGPT-style configurators (`exec(open('configurator.py').read())` over module globals, flags
`--key=value`), and the wandb switches each offers. Read from ASTs and config files, never run.
detect.py asks here; this module knows nothing of ranking or commands beyond the flag forms.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .detect import FileFacts

_MAX_CONFIG_BYTES = 256 * 1024


# --------------------------------------------------------------------------- console scripts

def _module_file(repo: Path, module: str) -> str | None:
    parts = module.split(".")
    for root in (repo, repo / "src"):
        for path in (root.joinpath(*parts).with_suffix(".py"), root.joinpath(*parts) / "__main__.py"):
            if path.is_file():
                return path.relative_to(repo).as_posix()
    return None


def read_pyproject(folder: Path) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
        return {}


def uv_workspace_members(root: Path) -> list[Path]:
    """The member folders a uv workspace root's pyproject.toml lists ([tool.uv.workspace] members, globs)."""
    workspace = read_pyproject(root).get("tool", {}).get("uv", {}).get("workspace", {})
    members: list[Path] = []
    excluded = {p.resolve() for pattern in workspace.get("exclude", []) or [] for p in root.glob(str(pattern))}
    for pattern in workspace.get("members", []) or []:
        for path in sorted(root.glob(str(pattern))):
            if path.is_dir() and (path / "pyproject.toml").is_file() and path.resolve() not in excluded:
                members.append(path)
    return members


def uv_workspace_root(folder: Path) -> Path | None:
    """The uv workspace `folder` belongs to (itself, or an ancestor up to 4 levels that lists it)."""
    folder = folder.resolve()
    for candidate in [folder, *list(folder.parents)[:4]]:
        if (candidate / "pyproject.toml").is_file() and "workspace" in read_pyproject(candidate).get("tool", {}).get("uv", {}):
            if candidate == folder or folder in {m.resolve() for m in uv_workspace_members(candidate)}:
                return candidate
    return None


def console_scripts(repo: Path) -> list[dict[str, Any]]:
    """Every console script the repo declares (and, at a uv workspace root, its members declare): name,
    target (module:function), the file it runs (relative to repo)."""
    out = _console_scripts(repo)
    for member in uv_workspace_members(repo):
        rel = member.relative_to(repo).as_posix()
        for script in _console_scripts(member):
            out.append({**script, "file": f"{rel}/{script['file']}" if script["file"] else None,
                        "where": f"{rel}/{script['where']}", "member": rel})
    return out


def _console_scripts(repo: Path) -> list[dict[str, Any]]:
    found: list[tuple[str, str, str]] = []
    pyproject = repo / "pyproject.toml"
    if pyproject.is_file():
        data = read_pyproject(repo)
        for name, target in (data.get("project", {}).get("scripts", {}) or {}).items():
            found.append((name, str(target), "pyproject.toml [project.scripts]"))
        for name, target in (data.get("tool", {}).get("poetry", {}).get("scripts", {}) or {}).items():
            if isinstance(target, str):
                found.append((name, target, "pyproject.toml [tool.poetry.scripts]"))
    setup = repo / "setup.py"
    if setup.is_file():
        try:
            tree = ast.parse(setup.read_bytes(), filename=str(setup))
        except (SyntaxError, ValueError):
            tree = None
        for node in ast.walk(tree) if tree else []:
            if isinstance(node, ast.keyword) and node.arg == "entry_points":
                try:
                    value = ast.literal_eval(node.value)
                except ValueError:
                    continue
                scripts = value.get("console_scripts", []) if isinstance(value, dict) else []
                for line in [scripts] if isinstance(scripts, str) else scripts:
                    if "=" in str(line):
                        name, target = (s.strip() for s in str(line).split("=", 1))
                        found.append((name, target, f"setup.py:{node.value.lineno}"))
    out = []
    for name, target, where in found:
        module = target.split(":", 1)[0].strip()
        out.append({"name": name, "target": target, "file": _module_file(repo, module), "where": where})
    return out


# --------------------------------------------------------------------------- Hydra

def _decorator_call(facts: "FileFacts", fn: ast.AST, suffix: str) -> ast.Call | None:
    for dec in getattr(fn, "decorator_list", []):
        if isinstance(dec, ast.Call) and (facts.qualify(dec.func) or "").endswith(suffix):
            return dec
    return None


def _str_kw(call: ast.Call, name: str, position: int | None = None) -> str | None:
    for kw in call.keywords:
        if kw.arg == name and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
            return kw.value.value
    if position is not None and len(call.args) > position and isinstance(call.args[position], ast.Constant):
        value = call.args[position].value
        return value if isinstance(value, str) else None
    return None


def read_yaml(path: Path) -> Any:
    import yaml

    try:
        with open(path, "rb") as fh:
            return yaml.safe_load(fh.read(_MAX_CONFIG_BYTES).decode("utf-8", errors="replace"))
    except (OSError, yaml.YAMLError):
        return None


def hydra_main(facts: "FileFacts", repo: Path) -> dict[str, Any] | None:
    """The `@hydra.main(config_path=…, config_name=…)` function of this file, with its config
    groups (sub-folders of the config dir) and the option each group defaults to."""
    for fn in ast.walk(facts.tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        call = _decorator_call(facts, fn, "hydra.main")
        if call is None:
            continue
        config_path = _str_kw(call, "config_path", 0)
        config_name = _str_kw(call, "config_name", 1)
        info: dict[str, Any] = {"where": facts.where(fn), "function": fn.name, "config_dir": None,
                                "config_name": config_name, "groups": {}, "defaults": {}}
        if config_path is not None:
            folder = (facts.path.parent / config_path).resolve()
            if folder.is_dir() and folder.is_relative_to(repo):
                info["config_dir"] = folder.relative_to(repo).as_posix() or "."
                for group in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
                    options = sorted(p.stem for p in group.glob("*.yaml"))
                    if options:
                        info["groups"][group.name] = options
                main = folder / (config_name if config_name and config_name.endswith(".yaml") else f"{config_name}.yaml")
                data = read_yaml(main) if config_name else None
                for item in (data or {}).get("defaults", []) if isinstance(data, dict) else []:
                    if isinstance(item, dict):
                        for key, value in item.items():
                            info["defaults"][str(key).replace("optional ", "").strip()] = value
        return info
    return None


def find_key_path(data: Any, key: str, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    if isinstance(data, dict):
        if key in data:
            return (*path, key)
        for k, v in data.items():
            found = find_key_path(v, key, (*path, str(k)))
            if found:
                return found
    return None


def _line_of(path: Path, pattern: str) -> int | None:
    try:
        for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if re.match(pattern, line):
                return i
    except OSError:
        return None
    return None


def hydra_wandb(hydra: dict[str, Any], repo: Path) -> dict[str, Any] | None:
    """The wandb route of a Hydra repo: `logger=wandb`, and the override that sets the project."""
    if not hydra.get("config_dir") or "wandb" not in hydra["groups"].get("logger", []):
        return None
    path = repo / hydra["config_dir"] / "logger" / "wandb.yaml"
    data = read_yaml(path)
    key_path = find_key_path(data, "project")
    value = data
    for key in key_path or ():
        value = value.get(key) if isinstance(value, dict) else None
    line = _line_of(path, r"\s*project\s*:")
    rel = path.relative_to(repo).as_posix()
    default = hydra["defaults"].get("logger")
    return {
        "enabled_by_default": default == "wandb",
        "enable": None if default == "wandb" else "logger=wandb",
        "project": {"value": value, "where": f"{rel}:{line}" if line else rel, "set_in_code": True}
        if key_path else None,
        "project_switch": "logger." + ".".join(key_path) + "=P" if key_path else None,
        "evidence": [f"{rel} (Hydra logger option; {'the default' if default == 'wandb' else f'default logger: {default}'})"],
    }


# --------------------------------------------------------------------------- Lightning CLI, configurators

def lightning_cli(facts: "FileFacts") -> str | None:
    for node in ast.walk(facts.tree):
        if isinstance(node, ast.Call) and (facts.qualify(node.func) or "").rpartition(".")[2] == "LightningCLI":
            return facts.where(node)
    return None


def _is_configurator_exec(node: ast.AST) -> bool:
    """`exec(open('configurator.py').read())` (nanoGPT): command-line `--key=value` overrides globals."""
    if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name) and node.value.func.id == "exec"):
        return False
    return "configurator" in ast.unparse(node.value).lower()


def _constant(node: ast.AST) -> Any:
    """A literal, or arithmetic on literals (`5 * 8`); None for anything else."""
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        pass
    if all(isinstance(n, (ast.BinOp, ast.UnaryOp, ast.Constant, ast.operator, ast.unaryop)) for n in ast.walk(node)):
        try:
            return eval(compile(ast.Expression(node), "<constant>", "eval"), {"__builtins__": {}}, {})  # noqa: S307
        except Exception:  # 1/0 and friends: not a usable default
            return None
    return None


def configurator_flags(facts: "FileFacts") -> list[dict[str, Any]]:
    """Module globals (int/float/bool/str literals) assigned before the configurator runs: each is
    a `--name=value` flag (that form only: the configurator splits on '=')."""
    body = facts.tree.body
    at = next((i for i, stmt in enumerate(body) if _is_configurator_exec(stmt)), None)
    if at is None:
        return []
    flags = []
    for stmt in body[:at]:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            value = _constant(stmt.value)
            if value is None:
                continue
            if isinstance(value, (bool, int, float, str)) and not stmt.targets[0].id.startswith("_"):
                name = stmt.targets[0].id
                flags.append({"flags": [f"--{name}"], "dest": name, "default": value,
                              "type": type(value).__name__, "style": "key=value", "positional": False,
                              "where": facts.where(stmt)})
    return flags


def flag_text(flag: dict[str, Any], value: Any) -> str:
    """The flag as the repo's parser accepts it: `--lr 0.01` (argparse), `--learning_rate=6e-05`
    (configurator: only key=value), `key=value` (Hydra override)."""
    name = flag["flags"][-1] if flag.get("flags") else flag["dest"]
    if flag.get("style") == "hydra":
        return f"{flag['dest']}={value}"
    if flag.get("style") == "key=value":
        return f"{name}={value}"
    if flag.get("action") in ("store_true", "store_false"):
        return name
    return f"{name} {value}"


# --------------------------------------------------------------------------- wandb switches

def _guard_names(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> list[ast.AST]:
    """The tests of the `if`s around `node` (innermost first)."""
    tests = []
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If):
            tests.append(node.test)
    return tests


def wandb_switches(files: list["FileFacts"], flags: list[dict[str, Any]]) -> dict[str, Any]:
    """Whether the code's wandb is on by default, the switch that turns it on, and whether the code
    passes project= itself (then WANDB_PROJECT is ignored: wandb.init's arguments win) with the
    switch that does set it."""
    by_dest = {f["dest"]: f for f in flags if f.get("dest")}
    out: dict[str, Any] = {"enabled_by_default": None, "enable": None, "project": None, "project_switch": None}
    for facts in files:
        parents = {c: p for p in ast.walk(facts.tree) for c in ast.iter_child_nodes(p)}
        for node in ast.walk(facts.tree):
            if not isinstance(node, ast.Call):
                continue
            q = facts.qualify(node.func) or ""
            if not (q in ("wandb.init",) or q.rpartition(".")[2] == "WandbLogger"):
                continue
            for test in _guard_names(node, parents):
                names = [n.id if isinstance(n, ast.Name) else n.attr for n in ast.walk(test)
                         if isinstance(n, (ast.Name, ast.Attribute))]
                flag = next((by_dest[n] for n in names if n in by_dest and (
                    isinstance(by_dest[n].get("default"), bool)
                    or by_dest[n].get("action") in ("store_true", "store_false"))), None)
                if flag is not None:
                    on = flag.get("default") is True
                    out.update(enabled_by_default=on, enable=None if on else flag_text(flag, True),
                               enable_where=flag["where"])
                    break
            project = next((k.value for k in node.keywords if k.arg == "project"), None)
            if project is None:
                continue
            text = ast.unparse(project)
            if "WANDB_PROJECT" in text:
                continue  # reads the environment: --wandb-project works
            dest = project.id if isinstance(project, ast.Name) else project.attr if isinstance(project, ast.Attribute) else None
            flag = by_dest.get(dest or "")
            value = project.value if isinstance(project, ast.Constant) else (
                flag["default"] if flag is not None and "default" in flag else text)
            out["project"] = {"value": value, "expression": text,
                              "where": facts.where(node), "set_in_code": True}
            out["project_switch"] = flag_text(flag, "P") if flag else None
    return out
