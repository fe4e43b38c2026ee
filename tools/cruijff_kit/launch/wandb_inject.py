"""Add wandb to a training script, show the diff first, and undo it byte for byte.

Framework shortcuts come first (HF `report_to="wandb"`, Lightning `WandbLogger`, Keras
`WandbMetricsLogger`); a plain PyTorch loop gets `import wandb`, `wandb.init` right after the
arguments are parsed, `wandb.log` after the optimizer step (train) and after a no_grad block
(eval), and `wandb.finish`. Distributed code gets every call guarded for rank 0.

Places are found in the AST; the inserted text comes from templates/launch/wandb_snippets.py.j2.
Edits are character-offset insertions into the original text, so every untouched byte (line
endings included) stays as it was, and the result is parsed again before it may be written.
"""
from __future__ import annotations

import ast
import difflib
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CkError
from ..util.fs import atomic_write_json, atomic_write_text
from . import detect, state
from ..templating import macros

BACKUP_SUFFIX = ".backup"
_METRIC_NAME = re.compile(r"(loss|acc|accuracy|f1|score|metric|ppl|perplexity|auc|bleu|rouge|error)", re.I)
_GUARD_NAMES = ("_is_main_process", "_ck_wandb_is_main_process")
_TEMPLATE = "launch/wandb_snippets.py.j2"


@dataclass
class Edit:
    start: int          # character offsets into the original text
    end: int
    text: str
    what: str
    line: int           # 1-based line in the original, for the report

    def as_dict(self) -> dict[str, Any]:
        return {"what": self.what, "line": self.line}


class Source:
    """The script's text plus AST-position -> character-offset conversion."""

    def __init__(self, path: Path) -> None:
        self.path = path
        raw = path.read_bytes()
        try:
            self.text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CkError(f"not UTF-8 text: {exc}", file=path) from None
        try:
            self.tree = ast.parse(raw, filename=str(path))
        except SyntaxError as exc:
            raise CkError(f"cannot parse: {exc.msg}", file=path, line=exc.lineno) from None
        self.lines = self.text.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))
        self.newline = "\r\n" if "\r\n" in self.text else "\n"
        self.unit = self._indent_unit()

    def _indent_unit(self) -> str:
        for line in self.lines:
            stripped = line.lstrip(" \t")
            if stripped.strip() and len(stripped) != len(line):
                return line[: len(line) - len(stripped)]
        return "    "

    def offset(self, lineno: int, col_bytes: int) -> int:
        """AST columns count UTF-8 bytes; offsets here count characters."""
        line = self.lines[lineno - 1]
        return self.starts[lineno - 1] + len(line.encode("utf-8")[:col_bytes].decode("utf-8", errors="ignore"))

    def indent_of(self, node: ast.stmt) -> str:
        line = self.lines[node.lineno - 1]
        return line[: len(line) - len(line.lstrip(" \t"))]

    def after(self, node: ast.stmt) -> int:
        return self.starts[min(node.end_lineno, len(self.lines))]

    def before(self, node: ast.stmt) -> int:
        return self.starts[node.lineno - 1]

    def lines_text(self, snippet: str) -> str:
        return snippet.replace("\n", self.newline)


# --------------------------------------------------------------------------- AST helpers

def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}


def _ancestors(node: ast.AST, parents: dict[ast.AST, ast.AST]):
    while node in parents:
        node = parents[node]
        yield node


def _body_and_index(stmt: ast.stmt, parent: ast.AST) -> tuple[list[ast.stmt], int]:
    for name in ("body", "orelse", "finalbody", "handlers"):
        block = getattr(parent, name, None)
        if isinstance(block, list) and stmt in block:
            return block, block.index(stmt)
    raise ValueError("statement not in its parent's blocks")


def _enclosing_stmt(node: ast.AST, parents) -> ast.stmt:
    while not isinstance(node, ast.stmt):
        node = parents[node]
    return node


def _calls(tree: ast.AST, attr: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and n.func.attr == attr]


def _top_level_imports_end(src: Source) -> ast.stmt | None:
    """The last import of the module's leading import block (docstring/__future__ count as part)."""
    last = None
    for stmt in src.tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            last = stmt
        elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and last is None:
            last = stmt  # module docstring
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or detect.is_main_guard(stmt):
            break
    return last


def _imports_name(facts: detect.FileFacts, module: str) -> bool:
    return facts.aliases.get(module) == module


def _assigned_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
    return names


def _import_edit(src: Source, text: str, what: str = "import") -> Edit:
    anchor = _top_level_imports_end(src)
    pos = src.after(anchor) if anchor is not None else 0
    line = (anchor.end_lineno + 1) if anchor is not None else 1
    return Edit(pos, pos, src.lines_text(text), what, line)


def _add_keyword(src: Source, call: ast.Call, name: str, value: str, what: str) -> Edit:
    """Append `name=value` as the call's last argument, keeping its layout (one per line or inline)."""
    close = src.offset(call.end_lineno, call.end_col_offset) - 1  # the ')' itself
    args = [*call.args, *call.keywords]
    if not args:
        return Edit(close, close, f"{name}={value}", what, call.end_lineno)
    last = args[-1]
    last_end = src.offset(last.end_lineno, last.end_col_offset)
    between = src.text[last_end:close]
    has_comma = "," in between.split("#")[0]
    if "\n" in between and last.end_lineno != call.end_lineno:
        # one argument per line: add a line of our own, indented like the last argument
        line_start = src.starts[last.lineno - 1]
        indent = re.match(r"[ \t]*", src.text[line_start:]).group()
        comma_fix = [] if has_comma else [Edit(last_end, last_end, ",", what, last.end_lineno)]
        insert_at = src.starts[call.end_lineno - 1]
        return comma_fix + [Edit(insert_at, insert_at, f"{indent}{name}={value},{src.newline}", what,
                                 call.end_lineno)]  # type: ignore[return-value]
    text = f" {name}={value}" if has_comma else f", {name}={value}"
    return Edit(close if has_comma else last_end, close if has_comma else last_end, text, what, call.end_lineno)


def _flatten(items) -> list[Edit]:
    out = []
    for item in items:
        out += item if isinstance(item, list) else [item]
    return out


# --------------------------------------------------------------------------- framework shortcuts

def _hf_edits(src: Source, facts: detect.FileFacts, project: str | None) -> tuple[list[Edit], list[str]]:
    m = macros(_TEMPLATE)
    for node in ast.walk(src.tree):
        if isinstance(node, ast.Call):
            tail = (facts.qualify(node.func) or "").rpartition(".")[2]
            if tail in ("TrainingArguments", "Seq2SeqTrainingArguments", "SFTConfig", "DPOConfig", "GRPOConfig"):
                existing = next((k for k in node.keywords if k.arg == "report_to"), None)
                value = str(m.hf_report_to())
                notes = ["set the project with WANDB_PROJECT (`ck launch start --wandb-project P`)"]
                if existing is not None:
                    start = src.offset(existing.value.lineno, existing.value.col_offset)
                    end = src.offset(existing.value.end_lineno, existing.value.end_col_offset)
                    return [Edit(start, end, value, "report_to", existing.value.lineno)], notes
                return _flatten([_add_keyword(src, node, "report_to", value, "report_to")]), notes
    raise CkError("HF Trainer script, but no TrainingArguments(...) call in this file to add report_to to",
                  file=src.path, hint="pass `--report_to wandb` in the training command (HfArgumentParser "
                  "reads it) and set --wandb-project on `ck launch start`")


def _lightning_edits(src: Source, facts: detect.FileFacts, project: str | None) -> tuple[list[Edit], list[str]]:
    m = macros(_TEMPLATE)
    for node in ast.walk(src.tree):
        if not isinstance(node, ast.Call):
            continue
        q = facts.qualify(node.func) or ""
        if detect._is_lightning(q) and q.endswith("Trainer"):
            if any(k.arg == "logger" for k in node.keywords):
                raise CkError("the Lightning Trainer already has logger=…; add a WandbLogger to it by hand",
                              file=src.path, line=node.lineno, field="logger")
            package = "lightning.pytorch" if q.startswith("lightning") else "pytorch_lightning"
            need_os = bool(project) and not _imports_name(facts, "os")
            imports = ("import os\n" if need_os else "") + str(m.lightning_import(package))
            return _flatten([_import_edit(src, imports),
                             _add_keyword(src, node, "logger", str(m.lightning_logger(project)), "logger")]), \
                ["Lightning logs from rank 0 by itself"]
    raise CkError("Lightning script, but no Trainer(...) call in this file", file=src.path)


def _keras_edits(src: Source, facts: detect.FileFacts, project: str | None) -> tuple[list[Edit], list[str]]:
    m = macros(_TEMPLATE)
    parents = _parents(src.tree)
    fits = _calls(src.tree, "fit")
    if not fits:
        raise CkError("Keras script, but no .fit(...) call in this file", file=src.path)
    fit = fits[0]
    stmt = _enclosing_stmt(fit, parents)
    indent = src.indent_of(stmt)
    edits: list[Edit] = []
    need_os = bool(project) and not _imports_name(facts, "os")
    edits.append(_import_edit(src, ("import os\n" if need_os else "") + str(m.keras_import())))
    edits.append(Edit(src.before(stmt), src.before(stmt),
                      src.lines_text(str(m.init(indent, project, None, "", src.unit))), "init", stmt.lineno))
    callback = str(m.keras_callback())
    existing = next((k for k in fit.keywords if k.arg == "callbacks"), None)
    if existing is None:
        edits += _flatten([_add_keyword(src, fit, "callbacks", f"[{callback}]", "callback")])
    else:
        start = src.offset(existing.value.lineno, existing.value.col_offset)
        end = src.offset(existing.value.end_lineno, existing.value.end_col_offset)
        old = src.text[start:end]
        new = (f"[{old[1:-1].rstrip().rstrip(',')}, {callback}]" if isinstance(existing.value, ast.List)
               and existing.value.elts else f"[{callback}]" if isinstance(existing.value, ast.List)
               else f"[*{old}, {callback}]")
        edits.append(Edit(start, end, new, "callback", existing.value.lineno))
    edits.append(Edit(src.after(stmt), src.after(stmt),
                      src.lines_text(str(m.finish(indent, "", src.unit))), "finish", stmt.end_lineno + 1))
    return edits, []


# --------------------------------------------------------------------------- plain loop

def _loss_name(receiver: ast.AST) -> str | None:
    if isinstance(receiver, ast.Name):
        return receiver.id
    names = [n.id for n in ast.walk(receiver) if isinstance(n, ast.Name) and "loss" in n.id.lower()]
    return names[0] if names else None


def _optimizer_names(src: Source, facts: detect.FileFacts) -> set[str]:
    out = set()
    for node in ast.walk(src.tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            q = facts.qualify(node.value.func) or ""
            if ".optim." in f".{q}." or q.rpartition(".")[2] in detect._OPTIMIZER_CLASSES:
                out.add(node.targets[0].id)
    return out


def _args_anchor(src: Source) -> tuple[ast.stmt, str | None] | None:
    """The statement that yields parsed arguments, and the expression to use as wandb config."""
    parsers = {"parse_args", "parse_known_args", "parse_args_into_dataclasses"}
    returning: set[str] = set()
    for fn in ast.walk(src.tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                if isinstance(node, ast.Return) and isinstance(node.value, ast.Call) \
                        and isinstance(node.value.func, ast.Attribute) and node.value.func.attr in parsers:
                    returning.add(fn.name)
    for node in ast.walk(src.tree):
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and len(node.targets) == 1):
            continue
        func = node.value.func
        is_parse = (isinstance(func, ast.Attribute) and func.attr in parsers) or \
                   (isinstance(func, ast.Name) and func.id in returning)
        if not is_parse:
            continue
        target = node.targets[0]
        if isinstance(target, ast.Tuple) and target.elts and isinstance(target.elts[0], ast.Name):
            target = target.elts[0]
        config = f"vars({target.id})" if isinstance(target, ast.Name) and not (
            isinstance(func, ast.Attribute) and func.attr == "parse_args_into_dataclasses") else None
        return node, config
    return None


def _train_loop(src: Source, parents) -> tuple[ast.stmt, ast.Call]:
    backward = _calls(src.tree, "backward")
    if not backward:
        raise CkError("no `.backward()` call in this file: not a plain PyTorch training loop",
                      file=src.path, hint="run `ck launch detect` to see where the training code is")
    call = backward[0]
    loop = next((a for a in _ancestors(call, parents) if isinstance(a, (ast.For, ast.While, ast.AsyncFor))), None)
    if loop is None:
        raise CkError("`.backward()` is not inside a loop", file=src.path, line=call.lineno)
    return loop, call


def _plain_edits(src: Source, facts: detect.FileFacts, project: str | None,
                 distributed: bool) -> tuple[list[Edit], list[str]]:
    m = macros(_TEMPLATE)
    unit = src.unit
    parents = _parents(src.tree)
    notes: list[str] = []
    taken = _assigned_names(src.tree)
    guard = ""
    if distributed:
        guard = next(n for n in _GUARD_NAMES if n not in taken)
    edits: list[Edit] = []

    need_os = (bool(project) or bool(guard)) and not _imports_name(facts, "os")
    edits.append(_import_edit(src, str(m.imports(need_os, guard, unit))))

    loop, backward = _train_loop(src, parents)
    loss = _loss_name(backward.func.value)
    if loss is None:
        raise CkError("cannot tell which variable holds the loss (`.backward()` is called on an expression)",
                      file=src.path, line=backward.lineno, hint="assign the loss to a variable, then retry")

    # the outermost loop of the training code: wandb.init must run before it when args are not parsed here
    outer = loop
    for anc in _ancestors(loop, parents):
        if isinstance(anc, (ast.For, ast.While, ast.AsyncFor)):
            outer = anc
        if isinstance(anc, (ast.FunctionDef, ast.AsyncFunctionDef)):
            break
    anchor = _args_anchor(src)
    # parsed args in another function (get_args/main) run before the loop; in the same one, only if above it
    if anchor is not None and (not _same_function(anchor[0], outer, parents) or anchor[0].lineno < outer.lineno):
        stmt, config = anchor
        edits.append(Edit(src.after(stmt), src.after(stmt),
                          src.lines_text(str(m.init(src.indent_of(stmt), project, config, guard, unit))),
                          "init", stmt.end_lineno + 1))
    else:
        edits.append(Edit(src.before(outer), src.before(outer),
                          src.lines_text(str(m.init(src.indent_of(outer), project, None, guard, unit))),
                          "init", outer.lineno))
        notes.append("no parsed arguments found: wandb.init has no config")

    # train log: one value per optimizer step, right after the step (inside its `if`, if any)
    optimizers = _optimizer_names(src, facts)
    step_loop, step_call, optimizer = _optimizer_step(src, loop, backward, optimizers, parents)
    epoch = _epoch_var(loop, parents)
    if step_call is None:  # no recognisable step: after the backward statement, as before
        insert_after = _enclosing_stmt(backward, parents)
        while parents.get(insert_after) is not loop:
            insert_after = _enclosing_stmt(parents[insert_after], parents)
        accumulate = False
    else:
        insert_after = _enclosing_stmt(step_call, parents)
        scaled = _loss_scaling(src, loop, backward, loss, parents)
        # Gradient accumulation: the step sits in an outer loop or under an `if`, or the loss is divided
        # before backward. Then log the mean of the unscaled micro-batch losses since the last step.
        accumulate = step_loop is not loop or parents.get(insert_after) is not step_loop or scaled is not None
    if accumulate:
        capture_at, capture_expr, before = scaled or (_enclosing_stmt(backward, parents), loss, True)
        edits.append(Edit(src.before(step_loop), src.before(step_loop),
                          src.lines_text(str(m.loss_sum_init(src.indent_of(step_loop)))), "loss sum init",
                          step_loop.lineno))
        pos = src.before(capture_at) if before else src.after(capture_at)
        edits.append(Edit(pos, pos, src.lines_text(str(m.loss_sum_add(src.indent_of(capture_at), capture_expr))),
                          "loss capture", capture_at.lineno if before else capture_at.end_lineno + 1))
        notes.append("gradient accumulation: train/loss is the mean of the unscaled micro-batch losses of each "
                     "optimizer step, logged once per step")
    edits.append(Edit(src.after(insert_after), src.after(insert_after),
                      src.lines_text(str(m.log_train(src.indent_of(insert_after), loss, optimizer, epoch, guard, unit,
                                                     accumulate))),
                      "log train", insert_after.end_lineno + 1))

    eval_edit = _eval_edit(src, parents, loss, epoch, guard, m)
    if eval_edit:
        edits.append(eval_edit)
    else:
        notes.append("no evaluation block (with torch.no_grad()/inference_mode() assigning metrics) found: "
                     "only training metrics are logged")

    edits.append(_finish_edit(src, parents, outer, guard, m))
    if guard:
        notes.append(f"distributed code: every wandb call runs on rank 0 only ({guard}())")
    return edits, notes


def _is_optimizer_step(call: ast.Call, optimizers: set[str]) -> str | None:
    """'opt' for opt.step() / scaler.step(opt) / optimizer.step(); '' for another non-scheduler .step()."""
    receiver = call.func.value
    name = receiver.id if isinstance(receiver, ast.Name) else None

    def optimizer_like(n: str | None) -> bool:
        return bool(n) and (n in optimizers or "optim" in n.lower() or n == "opt")

    if optimizer_like(name):
        return name
    if name and "sched" in name.lower():
        return None
    arg = call.args[0] if call.args and isinstance(call.args[0], ast.Name) else None
    return arg.id if arg is not None and optimizer_like(arg.id) else ""


def _optimizer_step(src: Source, loop: ast.AST, backward: ast.Call, optimizers: set[str], parents
                    ) -> tuple[ast.AST, ast.Call | None, str | None]:
    """(the loop whose body holds the optimizer step, the step call, the optimizer's name): the
    backward's own loop first, then the loops around it (nanoGPT steps after its micro-step loop)."""
    loops = [loop]
    for anc in _ancestors(loop, parents):
        if isinstance(anc, (ast.FunctionDef, ast.AsyncFunctionDef)):
            break
        if isinstance(anc, (ast.For, ast.While, ast.AsyncFor)):
            loops.append(anc)
    for candidate in loops:
        steps = [(c, kind) for c in _calls(candidate, "step") if (kind := _is_optimizer_step(c, optimizers)) is not None]
        if candidate is loop:
            steps = [(c, k) for c, k in steps if (c.lineno, c.col_offset) > (backward.lineno, backward.col_offset)]
        named = [(c, k) for c, k in steps if k]
        chosen = named[0] if named else (steps[0] if steps else None)
        if chosen:
            return candidate, chosen[0], chosen[1] or None
    return loop, None, None


def _loss_scaling(src: Source, loop: ast.AST, backward: ast.Call, loss: str, parents
                  ) -> tuple[ast.stmt, str, bool] | None:
    """Where the unscaled loss can be read when it is divided before backward: (statement, expression,
    insert before it?). `loss = loss / N`, `loss /= N`: before it, `loss`. `loss = f(x) / N`: after it,
    `(loss * N)`. `(loss / N).backward()`: None (the variable itself is unscaled)."""
    found = None
    for node in ast.walk(loop):
        if not isinstance(node, (ast.Assign, ast.AugAssign)) or node.lineno >= backward.lineno:
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if not any(isinstance(t, ast.Name) and t.id == loss for t in targets):
            continue
        if isinstance(node, ast.AugAssign):
            found = (node, loss, True) if isinstance(node.op, ast.Div) else None
        elif isinstance(node.value, ast.BinOp) and isinstance(node.value.op, ast.Div):
            left = node.value.left
            if isinstance(left, ast.Name) and left.id == loss:
                found = (node, loss, True)
            else:
                found = (node, f"({loss} * {ast.unparse(node.value.right)})", False)
        else:
            found = None  # a plain (re)assignment: whatever came before no longer matters
    return found


def _same_function(a: ast.AST, b: ast.AST, parents) -> bool:
    fa = next((x for x in _ancestors(a, parents) if isinstance(x, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
    fb = next((x for x in _ancestors(b, parents) if isinstance(x, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
    return fa is fb


def _epoch_var(loop: ast.AST, parents) -> str | None:
    for node in [loop, *_ancestors(loop, parents)]:
        if isinstance(node, (ast.For, ast.AsyncFor)) and isinstance(node.target, ast.Name) \
                and "epoch" in node.target.id.lower():
            return node.target.id
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            break
    return None


def _eval_edit(src: Source, parents, train_loss: str, epoch: str | None, guard: str, m) -> Edit | None:
    for with_ in ast.walk(src.tree):
        if not isinstance(with_, ast.With):
            continue
        contexts = [item.context_expr for item in with_.items]
        if not any(isinstance(c, ast.Call) and isinstance(c.func, (ast.Attribute, ast.Name))
                   and (getattr(c.func, "attr", None) or getattr(c.func, "id", None)) in ("no_grad", "inference_mode")
                   for c in contexts):
            continue
        if _calls(with_, "backward"):
            continue
        parent = parents[with_]
        body, index = _body_and_index(with_, parent)
        metrics: list[str] = []
        last = with_
        # accumulators inside the block (`val_loss += …`), values computed in it or right after it
        for node in ast.walk(with_):
            if isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
                _add_metric(metrics, node.target.id, train_loss)
        for stmt in with_.body:
            if isinstance(stmt, ast.Assign):
                for t in stmt.targets:
                    if isinstance(t, ast.Name):
                        _add_metric(metrics, t.id, train_loss)
        for stmt in body[index + 1:]:
            if isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                if any(_METRIC_NAME.search(n) and n != train_loss for n in names):
                    for n in names:
                        _add_metric(metrics, n, train_loss)
                    last = stmt
            elif not isinstance(stmt, ast.Expr):
                break  # control flow after the block: stop looking for its results
        if not metrics:
            continue
        ep = epoch if epoch and any(a for a in _ancestors(with_, parents)
                                    if isinstance(a, ast.For) and isinstance(a.target, ast.Name)
                                    and a.target.id == epoch) else None
        return Edit(src.after(last), src.after(last),
                    src.lines_text(str(m.log_eval(src.indent_of(last), metrics, ep, guard, src.unit))),
                    "log eval", last.end_lineno + 1)
    return None


def _add_metric(metrics: list[str], name: str, train_loss: str) -> None:
    if _METRIC_NAME.search(name) and name != train_loss and name not in metrics:
        metrics.append(name)


def _finish_edit(src: Source, parents, outer: ast.stmt, guard: str, m) -> Edit:
    guard_block = next((s for s in src.tree.body if detect.is_main_guard(s)), None)
    if guard_block is not None and not _is_exit(guard_block.body[-1]):
        last = guard_block.body[-1]
        return Edit(src.after(last), src.after(last),
                    src.lines_text(
                        str(m.finish(src.indent_of(last), guard, src.unit))), "finish", last.end_lineno + 1)
    # no usable __main__ block: right after the training loop, at its level
    top = outer
    for anc in _ancestors(outer, parents):
        if isinstance(anc, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Module)):
            break
        if isinstance(anc, ast.stmt):
            top = anc
    pos = src.after(top)
    return Edit(pos, pos, src.lines_text(str(m.finish(src.indent_of(top), guard, src.unit))),
                "finish", top.end_lineno + 1)


def _is_exit(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.Raise):
        return True
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        func = stmt.value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return name in ("exit", "_exit")
    return False


# --------------------------------------------------------------------------- public API

def resolve_script(path: str | Path) -> Path:
    target = Path(path).expanduser()
    if target.is_dir():
        found = detect.detect(target)
        if found["entry_point"] is None:  # a monorepo root: which project is the user's to say
            raise CkError(f"no single training script in {target}: {found['question']}", field="SCRIPT",
                          hint="pass the .py file to change")
        target = target / found["entry_point"]
    if not target.is_file():
        raise CkError(f"training script not found: {target}", field="SCRIPT",
                      hint="pass the .py file to change, or the repo (its detected entry point is used)")
    return target.resolve()


def plan(path: str | Path, project: str | None = None) -> dict[str, Any]:
    script = resolve_script(path)
    backup = script.with_name(script.name + BACKUP_SUFFIX)
    if backup.exists():
        raise CkError(f"{backup.name} already exists: wandb was injected before", file=backup,
                      hint=f"`ck launch wandb revert {script}` first, or delete the backup if it is stale")
    src = Source(script)
    facts = detect.parse_file(script, script.parent)
    if (evidence := detect.wandb_evidence([facts])):
        raise CkError("this script already uses wandb; nothing to inject", file=script,
                      line=int(evidence[0].split(":")[1].split()[0]),
                      hint="treat it as 'already integrated': set --wandb-project on `ck launch start`")
    evidence = detect.framework_evidence([facts])
    framework = detect.pick_framework(evidence)
    distributed = bool(detect.distributed_evidence([facts]))
    if framework == "hf_trainer":
        edits, notes = _hf_edits(src, facts, project)
    elif framework == "lightning":
        edits, notes = _lightning_edits(src, facts, project)
    elif framework == "keras":
        edits, notes = _keras_edits(src, facts, project)
    elif framework == "pytorch":
        edits, notes = _plain_edits(src, facts, project, distributed)
    else:
        raise CkError("no training framework or loop found in this file (no Trainer, LightningModule, "
                      "Keras fit, or torch `.backward()`)", file=script,
                      hint="`ck launch detect REPO --json` shows which file holds the training code")

    new_text = _apply_edits(src.text, edits, src.newline)
    try:
        ast.parse(new_text)
    except SyntaxError as exc:  # our bug, but never write a broken script
        raise CkError(f"the injected script would not parse ({exc.msg} at line {exc.lineno}); nothing changed",
                      file=script, hint="add wandb by hand following skills/launch-training/references/wandb.md") from None
    diff = unified_diff(src.text, new_text, script.name)
    return {"file": str(script), "backup": str(backup), "framework": framework, "distributed": distributed,
            "project": project, "edits": [e.as_dict() for e in sorted(edits, key=lambda e: e.start)],
            "notes": notes, "diff": diff, "_new_text": new_text}


def unified_diff(old: str, new: str, name: str) -> str:
    """`diff -u` text, including its marker for a last line without a newline."""
    out = []
    for line in difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                     fromfile=f"a/{name}", tofile=f"b/{name}"):
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def _apply_edits(text: str, edits: list[Edit], newline: str = "\n") -> str:
    end = len(text)
    if text and not text.endswith("\n"):
        # a file without a final newline: the first insertion at its end starts a new line
        at_end = [e for e in edits if e.start == end]
        if at_end:
            at_end[0].text = newline + at_end[0].text
    # later offsets first, so earlier offsets stay valid; stable order keeps same-offset inserts in order
    for _, e in sorted(enumerate(edits), key=lambda ie: (ie[1].start, ie[0]), reverse=True):
        text = text[: e.start] + e.text + text[e.end:]
    return text


def inject(path: str | Path, project: str | None = None, apply: bool = False) -> dict[str, Any]:
    result = plan(path, project)
    new_text = result.pop("_new_text")
    result["applied"] = False
    if apply:
        script, backup = Path(result["file"]), Path(result["backup"])
        _copy_atomic(script, backup)
        atomic_write_text(script, new_text, mode=script.stat().st_mode & 0o7777)
        # what ck wrote, so revert can tell the user's later edits from ours
        atomic_write_json(_record_path(script), {"file": str(script), "backup": str(backup),
                                                 "sha256": _sha256(script.read_bytes()), "text": new_text})
        result["applied"] = True
    return result


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _record_path(script: Path) -> Path:
    """Where inject keeps what it wrote (in ck's launch state dir, never in the repo)."""
    key = _sha256(str(script.resolve()).encode())[:24]
    return state.launch_home() / "injections" / f"{key}.json"


def _copy_atomic(src: Path, dst: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copy2(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def revert(path: str | Path, force: bool = False) -> dict[str, Any]:
    script = Path(path).expanduser()
    if script.is_dir():
        raise CkError(f"{script} is a folder: pass the script that was injected", field="SCRIPT")
    backup = script.with_name(script.name + BACKUP_SUFFIX)
    if not backup.is_file():
        raise CkError(f"no backup to restore: {backup} does not exist", field="SCRIPT",
                      hint="only scripts changed by `ck launch wandb inject --yes` can be reverted")
    current_bytes = script.read_bytes() if script.exists() else b""
    current = current_bytes.decode("utf-8", errors="replace")
    original = backup.read_text(encoding="utf-8", errors="replace")
    record_file = _record_path(script)
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = None
    notes = []
    if record is None:
        notes.append("no record of what inject wrote (another CK_LAUNCH_HOME?): later edits could not be checked")
    elif record.get("sha256") != _sha256(current_bytes):
        later = unified_diff(record.get("text", ""), current, script.name)
        if not force:
            raise CkError(f"{script.name} changed since `ck launch wandb inject`; reverting would discard these "
                          f"edits:\n{later}", file=script, field="SCRIPT",
                          hint=f"keep them by removing the wandb lines by hand (then delete {backup.name}), or "
                               "discard them with `ck launch wandb revert SCRIPT --force`")
        notes.append("edits made after inject were discarded (--force)")
    diff = unified_diff(current, original, script.name)
    os.replace(backup, script)  # the backup's bytes (and mode) become the script; atomic
    if record_file.exists():
        record_file.unlink()
    return {"file": str(script.resolve()), "restored_from": str(backup), "reverted": True, "diff": diff,
            "notes": notes}
