"""Flags and subcommands of the command-line libraries argparse does not cover (AST only).

tyro (`tyro.cli(Args)` with a dataclass or a function: each field is `--field-name`, a bool is a
switch `--track` / `--no-track`), click (`@click.option("--lr")`, `@group.command()`), typer
(`@app.command()` functions, parameters as `--param-name`), argparse subparsers
(`sub.add_parser("train")`) and hand-written dispatchers (`{"train": train, "enjoy": enjoy}[sys.argv[1]]`,
rl_zoo3's shape). Every flag names the file and line that defines it (`where`), so a dispatching CLI's
flags are not mixed across its scripts.
"""
from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # detect.FileFacts: detect imports this module, not the other way round
    from .detect import FileFacts


def _literal(node: ast.AST | None) -> Any:
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return ast.unparse(node)


def _hyphen(name: str) -> str:
    return "--" + name.replace("_", "-")


def _field_flag(facts: "FileFacts", name: str, annotation: ast.AST | None, value: ast.AST | None, node: ast.AST,
                hyphens: bool = True) -> dict[str, Any]:
    default = value
    if isinstance(value, ast.Call) and (facts.qualify(value.func) or "").rpartition(".")[2] in ("field", "Field"):
        default = next((k.value for k in value.keywords if k.arg == "default"), None)
    type_text = ast.unparse(annotation) if annotation is not None else None
    flag = {"flags": [_hyphen(name) if hyphens else f"--{name}"], "dest": name, "type": type_text,
            "default": _literal(default), "required": value is None, "positional": False,
            "where": facts.where(node)}
    if type_text == "bool" or isinstance(flag["default"], bool):
        # tyro: `--track` turns a False default on, `--no-track` a True one off
        on = flag["default"] is True
        flag["flags"] = [("--no-" if on else "--") + name.replace("_", "-")]
        flag["action"] = "store_false" if on else "store_true"
    return flag


def tyro_flags(files: list["FileFacts"]) -> list[dict[str, Any]]:
    classes = {n.name: (f, n) for f in files for n in ast.walk(f.tree) if isinstance(n, ast.ClassDef)}
    functions = {n.name: (f, n) for f in files for n in ast.walk(f.tree) if isinstance(n, ast.FunctionDef)}
    flags: list[dict[str, Any]] = []
    for facts in files:
        for node in ast.walk(facts.tree):
            if not (isinstance(node, ast.Call) and (facts.qualify(node.func) or "") in ("tyro.cli", "tyro.cli")
                    and node.args and isinstance(node.args[0], ast.Name)):
                continue
            target = node.args[0].id
            if target in classes:
                owner, cls = classes[target]
                for stmt in cls.body:
                    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                        flags.append(_field_flag(owner, stmt.target.id, stmt.annotation, stmt.value, stmt))
            elif target in functions:
                owner, fn = functions[target]
                args = fn.args.args
                defaults = [None] * (len(args) - len(fn.args.defaults)) + list(fn.args.defaults)
                for arg, default in zip(args, defaults):
                    flags.append(_field_flag(owner, arg.arg, arg.annotation, default, arg))
    return flags


def _option_names(call: ast.Call) -> list[str]:
    return [a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.startswith("-")]


def click_typer_flags(files: list["FileFacts"]) -> list[dict[str, Any]]:
    """`@click.option(...)` decorators and typer command parameters, with the command they belong to."""
    flags: list[dict[str, Any]] = []
    for facts in files:
        for fn in ast.walk(facts.tree):
            if not isinstance(fn, ast.FunctionDef):
                continue
            command = _command_name(facts, fn)
            if any(isinstance(f := (d.func if isinstance(d, ast.Call) else d), ast.Attribute) and f.attr == "group"
                   for d in fn.decorator_list):
                command = None  # a group's options apply to every subcommand
            for deco in fn.decorator_list:
                if isinstance(deco, ast.Call) and (facts.qualify(deco.func) or "").endswith("click.option"):
                    names = _option_names(deco)
                    if not names:
                        continue
                    kw = {k.arg: k.value for k in deco.keywords}
                    long = [n for n in names if n.startswith("--")]
                    flag = {"flags": [n.split("/")[0] for n in names], "where": facts.where(deco),
                            "dest": (long[0] if long else names[0]).lstrip("-").split("/")[0].replace("-", "_"),
                            "default": _literal(kw.get("default")), "type": _literal(kw.get("type")),
                            "required": _literal(kw.get("required")) is True, "positional": False,
                            "command": command}
                    if _literal(kw.get("is_flag")) is True:
                        flag["action"] = "store_true"
                    flags.append(flag)
            if command is not None and _is_typer_command(facts, fn):
                args = fn.args.args
                defaults = [None] * (len(args) - len(fn.args.defaults)) + list(fn.args.defaults)
                for arg, default in zip(args, defaults):
                    value = default
                    names: list[str] = []
                    if isinstance(default, ast.Call) and (facts.qualify(default.func) or "").endswith(("typer.Option", "typer.Argument")):
                        names = _option_names(default)
                        value = default.args[0] if default.args and not names else next(
                            (k.value for k in default.keywords if k.arg == "default"), None)
                        if (facts.qualify(default.func) or "").endswith("Argument"):
                            flags.append({"flags": [arg.arg], "dest": arg.arg, "positional": True, "where": facts.where(arg),
                                          "command": command})
                            continue
                    flag = _field_flag(facts, arg.arg, arg.annotation, value, arg)
                    if names:
                        flag["flags"] = names
                    flag["command"] = command
                    flags.append(flag)
    return flags


def _command_name(facts: "FileFacts", fn: ast.FunctionDef) -> str | None:
    for deco in fn.decorator_list:
        call = deco if isinstance(deco, ast.Call) else None
        func = call.func if call else deco
        if isinstance(func, ast.Attribute) and func.attr in ("command", "group"):
            explicit = next((a.value for a in (call.args if call else []) if isinstance(a, ast.Constant)
                             and isinstance(a.value, str)), None)
            explicit = explicit or next((k.value.value for k in (call.keywords if call else [])
                                         if k.arg == "name" and isinstance(k.value, ast.Constant)), None)
            return explicit or fn.name.replace("_", "-")
    return None


def _is_typer_command(facts: "FileFacts", fn: ast.FunctionDef) -> bool:
    typer_apps = {t.id for n in ast.walk(facts.tree) if isinstance(n, ast.Assign) and isinstance(n.value, ast.Call)
                  and (facts.qualify(n.value.func) or "").endswith("typer.Typer") for t in n.targets
                  if isinstance(t, ast.Name)}
    for deco in fn.decorator_list:
        func = deco.func if isinstance(deco, ast.Call) else deco
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in typer_apps:
            return True
    return False


def subcommands(facts: "FileFacts") -> list[dict[str, Any]]:
    """The subcommands a file dispatches to: argparse add_parser, click/typer commands of a group/app,
    or a dict of callables indexed by sys.argv[1]."""
    out: list[dict[str, Any]] = []
    reads_argv = any(isinstance(n, ast.Attribute) and n.attr == "argv" for n in ast.walk(facts.tree))
    groups = 0
    for node in ast.walk(facts.tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_parser" \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            out.append({"name": node.args[0].value, "where": facts.where(node), "kind": "argparse"})
        elif isinstance(node, ast.FunctionDef):
            for deco in node.decorator_list:
                func = deco.func if isinstance(deco, ast.Call) else deco
                if isinstance(func, ast.Attribute) and func.attr == "group":
                    groups += 1
                elif isinstance(func, ast.Attribute) and func.attr == "command" and isinstance(func.value, ast.Name) \
                        and func.value.id not in ("click", "typer"):
                    out.append({"name": _command_name(facts, node), "where": facts.where(node), "kind": "command",
                                "function": node.name})
        elif isinstance(node, ast.Dict) and reads_argv and len(node.keys) >= 2 and all(
                isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.keys) and all(
                isinstance(v, (ast.Name, ast.Attribute)) for v in node.values):
            for key, value in zip(node.keys, node.values):
                out.append({"name": key.value, "where": facts.where(key), "kind": "dispatch",
                            "target": facts.qualify(value)})
    commands = [c for c in out if c["kind"] == "command"]
    if commands and not groups and len(commands) == 1 and not any(c["kind"] != "command" for c in out):
        return []  # a single typer/click command is the program itself, not a subcommand
    return out
