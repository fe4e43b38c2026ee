"""experiment_summary.md -> Experiment, with markdown-it-py.

Tolerant where people are (column order, header case, spacing, `-`/empty for not applicable,
`fine-tuned`/`Fine-tuned`, the original cruijff_kit layout with its Overview, Variables,
Evaluation Tasks, Evaluation Plan and Training / Evaluation / Output subsections), strict where
a silent guess would waste GPU hours (an unknown setting name, a value out of bounds, unknown
run type, duplicate run name, a run whose model is not in Resources, an unknown tool). All
problems of one file are reported together, each with file:line: field. What ck reads but does
not act on becomes a named warning (Experiment.warnings), never silently dropped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CkError, CkErrors
from .model import (
    EPOCH_WORDS,
    SUPPORTED_EVALUATION,
    SUPPORTED_PREPARATION,
    Evaluation,
    Experiment,
    Run,
    RunType,
    StatusRow,
    Tools,
)
from .eval_only import CHECKPOINT_COLUMN, problems as eval_only_problems
from .search import plan_problems, read_section
from ..settings import BY_KEY, RUN_SETTINGS, SAFE_NAME, Setting, lookup, lookup_column, norm, parse_quoted, suggest
from ..state import layout

MAX_SUMMARY_BYTES = 4 * 1024 * 1024  # a plan of 10,000 runs is ~1 MB
MAX_ERRORS = 50

KNOWN_SECTIONS = {"quick reference", "tools", "resources", "configuration", "all runs",
                  "runs", "evaluation", "evaluations", "status", "overview", "evaluation plan", "search"}
# sections of the original layout (and notes people add) that ck keeps as prose and does not read
PROSE_SECTIONS = {"variables", "compute estimates", "naming conventions", "notes", "question",
                  "research question", "hypothesis", "results", "background", "motivation", "next steps"}
# Configuration values that defer to the runs table (the original template's words)
DEFERRED = {"varies", "see runs table", "see the runs table", "see all runs", "per run", "varies by run",
            "see table", "see below"}

# normalised header -> field; schema settings are looked up in settings.py; others are kept verbatim
RUN_COLUMNS = {
    "run name": "name", "run": "name", "name": "name",
    "model": "model",
    "type": "type",
    "est time": "est_time", "estimated time": "est_time", "est": "est_time", "time": "est_time",
    "est disk": "est_disk", "estimated disk": "est_disk", "disk": "est_disk",
    "trial": "trial",  # a search's trial number (experiment/search.py)
}
EVAL_COLUMNS = {"task": "task", "task name": "task", "script": "script", "task script": "script",
                "epochs": "epochs", "epoch": "epochs", "split": "split", "system prompt": "system_prompt",
                "runs": "runs", "dataset": "dataset", "description": "description"}
STATUS_COLUMNS = {"run": "run", "job": "job", "job id": "job_id", "state": "state",
                  "duration": "duration"}
RUN_TYPES = {"fine-tuned": RunType.FINETUNED, "finetuned": RunType.FINETUNED,
             "fine tuned": RunType.FINETUNED, "fine-tune": RunType.FINETUNED,
             "control": RunType.CONTROL, "base": RunType.CONTROL, "baseline": RunType.CONTROL,
             "eval-only": RunType.EVAL_ONLY, "eval only": RunType.EVAL_ONLY, "evaluation only": RunType.EVAL_ONLY}
NOT_APPLICABLE = {"", "-", "—", "–", "n/a", "na", "none"}
# Configuration lines of the original layout that ck reads but does not act on
INFORMATIONAL = {
    "recipe": "ck chooses its own LoRA recipe (single-device or distributed, from GPUs / Nodes / CPU ranks)",
    "naming pattern": "ck names checkpoints <checkpoint directory>/<experiment>/<run directory>/epoch_N",
    "example": "ck names checkpoints <checkpoint directory>/<experiment>/<run directory>/epoch_N",
}

# "**Key:** value" (the seeds' form) or "**Key**: value"
_BULLET = re.compile(r"^\*\*(?P<key>[^*]+?)\s*(?::\s*\*\*|\*\*\s*:)\s*(?P<val>.*)$", re.S)
# "Key: value" without bold (`- Epochs: 3`): read like the bold form, never ignored
_PLAIN = re.compile(r"^(?P<key>[A-Za-z][A-Za-z0-9 ._()/+-]{0,60}?)\s*:(?:\s+(?P<val>.*)|\s*)$", re.S)
_CHECK = re.compile(r"^\s*(?:✓|✔|☑|✅|yes\b)\s*(?P<rest>.*)$", re.I)
_CROSS = {"", "-", "—", "–", "✗", "✘", "❌", "no", "x"}


def _norm_header(text: str) -> str:
    return norm(text)


def _clean(text: str) -> str:
    text = text.strip().replace("\\|", "|")
    if len(text) >= 2 and text[0] == text[-1] == "`":
        text = text[1:-1].strip()
    return text


@dataclass
class _Table:
    headers: list[str]
    rows: list[tuple[int, list[str]]]  # (1-based line, cells)
    line: int
    sub: str = ""


@dataclass
class _Section:
    title: str
    line: int
    bullets: dict[str, list[tuple[str, str, int]]] = field(default_factory=dict)  # sub -> [(key,val,line)]
    tables: list[_Table] = field(default_factory=list)
    paragraphs: list[tuple[str, str, int]] = field(default_factory=list)  # (sub, text, line)


class _Collector:
    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[CkError] = []
        self.warnings: list[str] = []

    def error(self, message: str, line: int | None, fld: str | None = None, hint: str | None = None):
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(CkError(message, file=self.path, line=line, field=fld, hint=hint))
        elif len(self.errors) == MAX_ERRORS:
            self.errors.append(CkError("more problems not shown; fix the ones above first", file=self.path))

    def warn(self, message: str, line: int | None = None) -> None:
        where = f"{self.path}:{line}: " if line else f"{self.path}: "
        self.warnings.append(where + message)


def _walk(tokens) -> tuple[str | None, int | None, list[_Section]]:
    title, title_line = None, None
    sections: list[_Section] = []
    sub = ""
    list_depth = 0
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "heading_open":
            text = tokens[i + 1].content.strip()
            line = tok.map[0] + 1
            if tok.tag == "h1" and title is None:
                title, title_line = text, line
            elif tok.tag == "h2":
                sections.append(_Section(text, line))
                sub = ""
            elif tok.tag == "h3":
                sub = text.lower()
            i += 3
            continue
        if tok.type in ("bullet_list_open", "ordered_list_open"):
            list_depth += 1
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            list_depth -= 1
        elif tok.type == "inline" and list_depth == 1 and sections and tokens[i - 1].type == "paragraph_open" \
                and tokens[i - 2].type == "list_item_open":
            first = tok.content.split("\n", 1)[0]
            m = _BULLET.match(first) or _PLAIN.match(first)
            if m:
                sections[-1].bullets.setdefault(sub, []).append(
                    (m.group("key").strip(), _clean(m.group("val") or ""), tok.map[0] + 1))
        elif tok.type == "inline" and list_depth == 0 and sections and tokens[i - 1].type == "paragraph_open":
            sections[-1].paragraphs.append((sub, tok.content, tok.map[0] + 1))
        elif tok.type == "table_open" and sections:
            i = _read_table(tokens, i, sections[-1], sub)
            continue
        i += 1
    return title, title_line, sections


def _read_table(tokens, i: int, section: _Section, sub: str) -> int:
    table = _Table(headers=[], rows=[], line=tokens[i].map[0] + 1, sub=sub)
    in_head = False
    row: list[str] | None = None
    row_line = 0
    while tokens[i].type != "table_close":
        t = tokens[i]
        if t.type == "thead_open":
            in_head = True
        elif t.type == "thead_close":
            in_head = False
        elif t.type == "tr_open":
            row, row_line = [], t.map[0] + 1
        elif t.type == "inline" and row is not None:
            row.append(_clean(t.content))
        elif t.type == "tr_close" and row is not None:
            if in_head:
                table.headers = row
            else:
                table.rows.append((row_line, row))
            row = None
        i += 1
    section.tables.append(table)
    return i + 1


def _parse_int(c: _Collector, text: str, line: int, fld: str, *, minimum: int, maximum: int = 10**6) -> int | None:
    if not re.fullmatch(r"[+-]?\d{1,19}", text.strip()):
        c.error(f"expected a whole number, got {text.strip()[:40]!r}", line, fld)
        return None
    value = int(text)
    if value < minimum:
        c.error(f"must be >= {minimum}, got {value}", line, fld)
        return None
    if value > maximum:
        c.error(f"must be <= {maximum}, got {value}", line, fld)
        return None
    return value


def _setting_value(c: _Collector, s: Setting, text: str, line: int, fld: str):
    try:
        return s.parse_text(text)
    except ValueError as exc:
        c.error(str(exc), line, fld)
        return None


def _columns(c: _Collector, table: _Table, mapping: dict[str, str], what: str) -> list[str | None]:
    cols: list[str | None] = []
    seen: set[str] = set()
    for h in table.headers:
        key = mapping.get(_norm_header(h))
        if key in seen:
            c.error(f"column {h!r} appears twice", table.line, what)
        if key:
            seen.add(key)
        cols.append(key)
    return cols


def _run_columns(c: _Collector, table: _Table) -> list[tuple[str, str | Setting | None]]:
    """Per header: ("field", name) for fixed columns, ("setting", Setting), or ("extra", None)."""
    out: list[tuple[str, object]] = []
    seen: dict[str, str] = {}
    for h in table.headers:
        n = _norm_header(h)
        if n in RUN_COLUMNS:
            kind, what = "field", RUN_COLUMNS[n]
        elif (s := lookup_column(h)) is not None:
            kind, what = "setting", s
        else:
            near = suggest(h, [s.name for s in RUN_SETTINGS] + ["Run Name", "Model", "Type", "Est. Time", "Est. Disk"])
            if near and _close(h, near):
                c.error(f"unknown runs-table column {h!r}", table.line, "All Runs",
                        hint=f"did you mean {near!r}? (settings: skills/scaffold-torchtune/references/setup-fields.md)")
            kind, what = "extra", None
        ident = what.key if isinstance(what, Setting) else what
        if ident is not None:
            if ident in seen:
                c.error(f"columns {seen[ident]!r} and {h!r} name the same setting", table.line, "All Runs")
            seen[ident] = h
        out.append((kind, what))
    return out


def _close(a: str, b: str, ratio: float = 0.85) -> bool:
    import difflib

    return difflib.SequenceMatcher(None, norm(a), norm(b)).ratio() >= ratio


def _parse_runs(c: _Collector, table: _Table, models: dict[str, str]) -> list[Run]:
    cols = _run_columns(c, table)
    fields = {what for kind, what in cols if kind == "field"}
    for required in ("name", "model", "type"):
        if required not in fields:
            c.error(f"the runs table has no {required.replace('_', ' ')!r} column "
                    f"(columns: {', '.join(table.headers)})", table.line, "All Runs")
            return []
    for (kind, _), header in zip(cols, table.headers):
        if kind == "extra" and _norm_header(header) != CHECKPOINT_COLUMN.lower():  # eval-only runs use it
            c.warn(f"runs-table column {header!r} is not a setting: kept as a note, ck does not use it", table.line)
    runs: list[Run] = []
    names: dict[str, int] = {}
    trials: dict[int, int] = {}
    for line, cells in table.rows:
        values: dict[str, str] = {}
        settings: dict[str, object] = {}
        extra: list[tuple[str, str]] = []
        empty: list[str] = []  # setting cells left blank ('-' says "the experiment's value" on purpose)
        for header, (kind, what), cell in zip(table.headers, cols, cells):
            if kind == "field":
                values[what] = cell
            elif kind == "setting":
                if not cell.strip():
                    empty.append(header.strip())
                elif cell.strip().lower() not in NOT_APPLICABLE:
                    settings[what.key] = _setting_value(c, what, cell, line, header.strip())
            elif cell.strip():
                extra.append((header.strip(), cell.strip()))
        name = values.get("name", "").strip()
        if not name:
            c.error("run name is empty", line, "Run Name")
            continue
        if name in names:
            c.error(f"duplicate run name {name!r} (first on line {names[name]})", line, "Run Name")
            continue
        names[name] = line
        type_text = values.get("type", "").strip()
        rtype = RUN_TYPES.get(type_text.lower())
        if rtype is None:
            c.error(f"unknown run type {type_text[:40]!r}", line, "Type",
                    hint="use 'Fine-tuned', 'Control' or 'Eval-only'")
            continue
        if rtype is RunType.FINETUNED:
            for header in empty:
                c.error(f"the {header!r} cell of run {name!r} is empty", line, header,
                        hint="write the value, or '-' for the experiment's (Configuration or default)")
        else:
            for key, value in settings.items():
                if value is not None:
                    header = next(h.strip() for h, (k, w) in zip(table.headers, cols) if k == "setting" and w.key == key)
                    c.error(f"{rtype.value.lower()} run {name!r} is not trained, so its {header} "
                            f"{BY_KEY[key].format(value)!r} would be ignored", line, header,
                            hint="write '-' in training columns of control and eval-only runs")
            settings = {}
        trial = _trial(c, values.get("trial", ""), line, rtype, trials)
        model = values.get("model", "").strip()
        if model not in models:
            known = ", ".join(models) or "none"
            c.error(f"model {model[:80]!r} of run {name!r} is not listed under Resources > Models "
                    f"(listed: {known})", line, "Model")
        runs.append(Run(name=name, model=model, type=rtype, settings=tuple(settings.items()),
                        est_time=_na_to_empty(values.get("est_time", "")),
                        est_disk=_na_to_empty(values.get("est_disk", "")), extra=tuple(extra), line=line,
                        trial=trial))
    return runs


def _trial(c: _Collector, text: str, line: int, rtype: RunType, seen: dict[int, int]) -> int | None:
    """A Trial cell: a search trial's number (fine-tuned runs), '-' for every other run."""
    if text.strip().lower() in NOT_APPLICABLE:
        return None
    if rtype is not RunType.FINETUNED:
        c.error(f"a {rtype.value.lower()} run is not a search trial", line, "Trial", hint="write '-'")
        return None
    number = _parse_int(c, text, line, "Trial", minimum=0, maximum=10**6)
    if number is not None and number in seen:
        c.error(f"trial {number} appears twice (first on line {seen[number]})", line, "Trial")
        return None
    if number is not None:
        seen[number] = line
    return number


def _check_against_config(c: _Collector, runs: list[Run], stated: dict, stated_line: dict) -> None:
    """A runs-table value that contradicts Configuration: which one did the user mean? Refused."""
    for run in runs:
        for key, value in run.settings:
            same = (tuple(value) if isinstance(value, list) else value) == \
                (tuple(stated[key]) if isinstance(stated.get(key), list) else stated.get(key))
            if key in stated and value is not None and not same:
                s = BY_KEY[key]
                c.error(f"run {run.name!r} has {s.name} {s.format(value)} but Configuration says "
                        f"{s.format(stated[key])} (line {stated_line[key]})", run.line, s.column,
                        hint="state it in one place: the runs table for values that differ between runs")


def _check_run_names(c: _Collector, runs: list[Run]) -> None:
    """A run name that spells a value (`..._lr1e-5`) must carry the run's own value: after an edit of
    the runs table, results would be labelled with the old one."""
    for run in runs:
        if not run.finetuned:
            continue
        parts = run.name.split("_")
        fixed = list(parts)
        for key, value in run.settings:
            s = BY_KEY[key]
            if value is None or not s.short or s.kind not in ("int", "float"):
                continue
            for i, part in enumerate(parts):
                if not part.startswith(s.short) or len(part) == len(s.short):
                    continue
                try:
                    named = s.parse_text(part[len(s.short):])
                except ValueError:
                    continue
                if named != value:
                    fixed[i] = s.directory_part(value, 1)
        if fixed != parts:
            c.error(f"run name {run.name!r} does not match its runs-table values", run.line, "Run Name",
                    hint=f"rename it {'_'.join(fixed)!r} (a name says what the run trains with)")


def _na_to_empty(text: str) -> str:
    return "" if text.strip() in ("", "-", "—", "–") else text.strip()


def _parse_epochs(c: _Collector, text: str, line: int) -> tuple[tuple[int, ...], str]:
    """`0`, `0, 1`, `all`, `last` -> (epochs, spec)."""
    t = text.strip().lower()
    if t in EPOCH_WORDS:
        return (), t
    parts = [p for p in re.split(r"[,\s]+", t) if p]
    if not parts:
        return (0,), ""
    out: list[int] = []
    for p in parts:
        v = _parse_int(c, p, line, "Epochs", minimum=0, maximum=999)
        if v is not None and v not in out:
            out.append(v)
    return tuple(out), ""


def _cell_or_none(text: str) -> str | None:
    return None if text.strip().lower() in NOT_APPLICABLE else parse_quoted(text)


def _parse_evaluations(c: _Collector, table: _Table) -> list[Evaluation]:
    cols = _columns(c, table, EVAL_COLUMNS, "Evaluation")
    if "task" not in cols:
        c.error(f"the evaluation table has no 'Task' column (columns: {', '.join(table.headers)})",
                table.line, "Evaluation")
        return []
    for h, k in zip(table.headers, cols):
        if k is None:
            c.error(f"unknown evaluation column {h!r}", table.line, "Evaluation",
                    hint="columns: Task, Script, Epochs, Split, System prompt, Runs, Dataset, Description")
    evals: list[Evaluation] = []
    for line, cells in table.rows:
        values = {k: v for k, v in zip(cols, cells) if k}
        task = values.get("task", "").strip()
        if not task:
            c.error("task name is empty", line, "Task")
            continue
        epochs, spec = _parse_epochs(c, values.get("epochs", "0"), line)
        runs_text = values.get("runs", "").strip()
        runs = () if runs_text.lower() in ("", "-", "—", "–", "all") else tuple(
            r for r in re.split(r"[,\s]+", runs_text) if r)
        evals.append(Evaluation(task=task, script=values.get("script", "").strip(), epochs=epochs, epoch_spec=spec,
                                split=_cell_or_none(values.get("split", "")),
                                system_prompt=_cell_or_none(values.get("system_prompt", "")), runs=runs,
                                dataset=_na_to_empty(values.get("dataset", "")),
                                description=_na_to_empty(values.get("description", "")), line=line))
    return evals


def _parse_status(table: _Table) -> list[StatusRow]:
    cols = [STATUS_COLUMNS.get(_norm_header(h)) for h in table.headers]
    rows = []
    for _, cells in table.rows:
        values = {k: v.strip() for k, v in zip(cols, cells) if k}
        rows.append(StatusRow(**{k: values.get(k, "") for k in ("run", "job", "job_id", "state", "duration")}))
    return rows


# ---- the original layout's Evaluation Tasks / Evaluation Plan ------------------------------------

_PLAN_PROSE = re.compile(r"evaluated\s+on\s+(?P<tasks>.+?)\s+at\s+(?P<epochs>[^.]+)", re.I | re.S)


def _epochs_phrase(c: _Collector, text: str, line: int, fld: str) -> tuple[tuple[int, ...], str] | None:
    """"epoch 0", "epochs 0 and 1", "epoch 0,1", "all epochs", "every epoch", "the last epoch"."""
    t = text.strip().lower().replace("`", "")
    t = re.sub(r"\bepoch_(\d+)", r"\1", t)
    if re.search(r"\b(all|every|each)\b", t):
        return (), "all"
    if re.search(r"\b(last|final)\b", t):
        return (), "last"
    nums = re.findall(r"\d+", t)
    if not nums or re.sub(r"\b(the|epochs?|and|,|\d+|\s)\b", "", t).strip(" ,"):
        c.error(f"cannot read the epochs in {text.strip()[:60]!r}", line, fld,
                hint="write e.g. 'epoch 0', 'epochs 0, 1', 'all epochs' or 'the last epoch' (0-based)")
        return None
    out = []
    for n in nums:
        v = _parse_int(c, n, line, fld, minimum=0, maximum=999)
        if v is not None and v not in out:
            out.append(v)
    return tuple(out), ""


def _task_names(text: str) -> list[str]:
    parts = re.split(r",|\band\b|&", text.replace("`", "").replace("*", ""))
    return [p.strip() for p in parts if p.strip()]


def _original_evaluations(c: _Collector, tasks_table: _Table | None, plan: _Section | None,
                          run_names: list[str]) -> list[Evaluation]:
    catalog: dict[str, dict] = {}
    if tasks_table is not None:
        cols = _columns(c, tasks_table, EVAL_COLUMNS, "Evaluation Tasks")
        if "task" not in cols:
            c.error("the Evaluation Tasks table has no 'Task Name' column", tasks_table.line, "Evaluation Tasks")
        for line, cells in tasks_table.rows:
            values = {k: v for k, v in zip(cols, cells) if k}
            name = values.get("task", "").strip()
            if name:
                catalog[name] = {"script": values.get("script", "").strip(), "line": line,
                                 "dataset": _na_to_empty(values.get("dataset", "")),
                                 "description": _na_to_empty(values.get("description", ""))}

    def entry(task: str, line: int, fld: str) -> dict | None:
        if task not in catalog:
            c.error(f"task {task!r} is not in the Evaluation Tasks table (Resources), so it has no script",
                    line, fld, hint="add a row: | Task Name | Script | Dataset | Description |")
            return None
        return catalog[task]

    def make(task, info, epochs, spec, runs, line):
        dataset = info["dataset"]
        if dataset and not ("/" in dataset or dataset.endswith((".json", ".parquet"))):
            c.warn(f"Dataset {dataset!r} of task {task!r} is not a path: the task reads the experiment's dataset",
                   info["line"])
            dataset = ""
        return Evaluation(task=task, script=info["script"], epochs=epochs, epoch_spec=spec, runs=runs,
                          dataset=dataset, description=info["description"], line=line)

    evals: list[Evaluation] = []
    matrix = next((t for t in (plan.tables if plan else []) if "matrix" in t.sub or len(t.headers) > 1), None)
    if matrix is not None:
        first = _norm_header(matrix.headers[0]) if matrix.headers else ""
        if first not in ("run name", "run", "name"):
            c.error("the Evaluation Matrix's first column must be 'Run Name'", matrix.line, "Evaluation Matrix")
            return []
        groups: dict[tuple[str, tuple[int, ...], str], list[str]] = {}
        lines: dict[tuple[str, tuple[int, ...], str], int] = {}
        task_cols = [(i, h.strip()) for i, h in enumerate(matrix.headers) if i and _norm_header(h) != "notes"]
        for line, cells in matrix.rows:
            run = cells[0].strip() if cells else ""
            if run not in run_names:
                c.error(f"run {run!r} of the Evaluation Matrix is not in the runs table", line, "Evaluation Matrix")
                continue
            for i, task in task_cols:
                cell = cells[i].strip() if i < len(cells) else ""
                if cell.lower() in _CROSS:
                    continue
                m = _CHECK.match(cell)
                if not m:
                    c.error(f"cannot read the cell {cell[:40]!r}: write '✓ epoch 0,1' or '-'", line, task)
                    continue
                rest = m.group("rest").strip()
                got = _epochs_phrase(c, rest, line, task) if rest else ((), "last")
                if got is None:
                    continue
                key = (task, got[0], got[1])
                groups.setdefault(key, []).append(run)
                lines.setdefault(key, line)
        for (task, epochs, spec), runs in groups.items():
            info = entry(task, lines[(task, epochs, spec)], "Evaluation Matrix")
            if info is not None:
                evals.append(make(task, info, epochs, spec, tuple(runs), lines[(task, epochs, spec)]))
        return evals
    prose = [(text, line) for _, text, line in (plan.paragraphs if plan else [])]
    for text, line in prose:
        for m in _PLAN_PROSE.finditer(text):
            got = _epochs_phrase(c, m.group("epochs"), line, "Evaluation Plan")
            if got is None:
                continue
            for task in _task_names(m.group("tasks")):
                info = entry(task, line, "Evaluation Plan")
                if info is not None:
                    evals.append(make(task, info, got[0], got[1], (), line))
    if plan is not None and not evals and not c.errors:
        c.error("cannot read which tasks and epochs the Evaluation Plan evaluates", plan.line, "Evaluation Plan",
                hint="write 'All runs will be evaluated on TASK at epoch 0' or an Evaluation Matrix table")
    if plan is None and catalog:
        for task, info in catalog.items():
            c.warn(f"task {task!r} is listed under Evaluation Tasks but no Evaluation Plan says which epochs: "
                   "evaluating the last epoch", info["line"])
            evals.append(make(task, info, (), "last", (), info["line"]))
    return evals


# ---- the whole file ------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u2028-\u202e\ufeff]")


def _check_headings(c: _Collector, sections: list[_Section]) -> None:
    """An unknown `##` heading would drop its whole section (every setting back to its default):
    refused when it looks like a known one, carries a control character, or holds what ck reads."""
    known = sorted(KNOWN_SECTIONS | PROSE_SECTIONS)
    for s in sections:
        title = s.title.strip()
        key = title.lower()
        if key in KNOWN_SECTIONS or key in PROSE_SECTIONS:
            continue
        near = suggest(title, [k.title() for k in known])
        hint = f"did you mean '## {near}'?" if near else "sections: " + ", ".join(k.title() for k in sorted(KNOWN_SECTIONS))
        if _CONTROL.search(title):
            c.error(f"heading {title[:60]!r} contains a control or invisible character", s.line, "heading", hint=hint)
        elif near and _close(title, near, 0.75):
            c.error(f"unknown section '## {title[:60]}'", s.line, "heading", hint=hint)
        elif s.bullets or s.tables:
            c.error(f"unknown section '## {title[:60]}' holds settings or a table that ck would not read",
                    s.line, "heading", hint=hint + " (free notes are kept when they are prose)")


def parse_summary_text(text: str, path: str = layout.SUMMARY) -> Experiment:
    text = text.removeprefix("\ufeff")  # a UTF-8 BOM (Windows editors) is not part of the title
    md = MarkdownIt_commonmark()
    tokens = md.parse(text)
    c = _Collector(path)
    title, _, sections = _walk(tokens)
    if not title:
        c.error("no '# experiment_name' title on the first heading", 1, "title")
        raise CkErrors(c.errors)

    _check_headings(c, sections)
    by_title: dict[str, _Section] = {}
    for s in sections:
        key = s.title.strip().lower()
        if key in by_title and key in KNOWN_SECTIONS:
            c.error(f"section '## {s.title.strip()}' appears twice (first on line {by_title[key].line})",
                    s.line, s.title.strip())
        by_title.setdefault(key, s)

    experiment_dir = ""
    if (qr := by_title.get("quick reference")):
        for sub_items in qr.bullets.values():
            for key, val, _ in sub_items:
                if key.lower() in ("experiment", "experiment dir", "experiment directory"):
                    experiment_dir = val

    question = ""
    if (ov := by_title.get("overview")):
        for key, val, _ in [b for items in ov.bullets.values() for b in items]:
            if norm(key) in ("question", "research question", "scientific question"):
                question = parse_quoted(val)

    tools = Tools()
    if (ts := by_title.get("tools")):
        prep, ev = tools.preparation, tools.evaluation
        for key, val, line in [b for items in ts.bullets.values() for b in items]:
            tool = val.split()[0].lower() if val.split() else ""
            if key.lower() in ("model preparation", "preparation"):
                # one tool, or the trainers a plan that varies them uses ("torchtune, trl")
                named = [w.split()[0].lower() for w in val.split(",") if w.split()] if "," in val else [tool]
                if not named or any(t not in SUPPORTED_PREPARATION for t in named):
                    c.error(f"unsupported model preparation tool {val[:40]!r}", line, "Model Preparation",
                            hint=f"supported: {', '.join(SUPPORTED_PREPARATION)}")
                prep = ", ".join(named)
            elif key.lower() in ("evaluation", "evaluation tool"):
                if tool not in SUPPORTED_EVALUATION:
                    c.error(f"unsupported evaluation tool {val[:40]!r}", line, "Evaluation",
                            hint=f"supported: {', '.join(SUPPORTED_EVALUATION)}")
                ev = tool
        tools = Tools(prep, ev)

    models: dict[str, str] = {}
    dataset = ""
    tasks_table = None
    if (rs := by_title.get("resources")):
        for sub, items in rs.bullets.items():
            for key, val, line in items:
                if sub.startswith("model"):
                    if key in models:
                        c.error(f"model {key!r} listed twice", line, "Models")
                    models[key] = val
                elif sub.startswith("dataset") or key.lower() == "dataset":
                    if key.lower() in ("path", "dataset", "file"):
                        dataset = val
                        _check_dataset_path(c, val, line)
                    elif key.lower() == "format" and val.strip().lower() not in ("json", "parquet", ""):
                        c.error(f"dataset format {val[:40]!r} is not supported", line, "Format",
                                hint="use a .json file {\"train\": [...], ...} or a directory of .parquet splits")
        tasks_table = next((t for t in rs.tables if "task" in t.sub), None)
    else:
        c.error("no '## Resources' section (models and dataset)", None, "Resources")

    stated: dict[str, object] = {}
    stated_line: dict[str, int] = {}
    deferred: dict[str, tuple[str, int]] = {}  # "LoRA rank: varies" -> the runs table says
    if (cs := by_title.get("configuration")):
        for sub, items in cs.bullets.items():
            for key, val, line in items:
                s = lookup(key, subsection=sub)
                if s is None:
                    why = INFORMATIONAL.get(norm(key))
                    if why:
                        c.warn(f"Configuration '{key}: {val[:60]}' is not used: {why}", line)
                        continue
                    near = suggest(key)
                    c.error(f"unknown setting {key[:60]!r}", line, key[:60],
                            hint=(f"did you mean {near!r}? " if near else "")
                            + "settings: skills/scaffold-torchtune/references/setup-fields.md")
                    continue
                if s.key in stated_line:
                    c.error(f"{s.name!r} is set twice (first on line {stated_line[s.key]})", line, key)
                    continue
                stated_line[s.key] = line
                if s.per_run and norm(val.strip("*_() ")) in DEFERRED:
                    deferred[s.key] = (key, line)
                    continue
                value = _setting_value(c, s, val, line, key)
                if value is not None:
                    stated[s.key] = value
        if "eval_system_prompt" in stated and "system_prompt" in stated \
                and stated["eval_system_prompt"] != stated["system_prompt"]:
            c.warn("the evaluation system prompt differs from the training one", stated_line["eval_system_prompt"])

    runs: list[Run] = []
    rt = by_title.get("all runs") or by_title.get("runs")
    if rt is None or not rt.tables:
        c.error("no '## All Runs' table" + (" (a table needs a |---| line with one cell per column)" if rt else ""),
                rt.line if rt else None, "All Runs")
    else:
        runs = _parse_runs(c, rt.tables[0], models)
        if not runs and not c.errors:
            c.error("the runs table has no rows", rt.tables[0].line, "All Runs")
        for message, line in eval_only_problems(runs):
            c.error(message, line, CHECKPOINT_COLUMN)
    if rt is not None and rt.tables:
        columns = {lookup_column(h).key for h in rt.tables[0].headers if lookup_column(h) is not None}
        for skey, (key, line) in deferred.items():
            if skey not in columns:
                c.error(f"{key!r} defers to the runs table, which has no {BY_KEY[skey].column!r} column",
                        line, key, hint=f"add the column, or write the value here")
        _check_against_config(c, runs, stated, stated_line)
        _check_run_names(c, runs)
    for run in runs:
        if run.finetuned and run.value("lora_rank") is None and "lora_rank" not in stated:
            c.error(f"fine-tuned run {run.name!r} needs a LoRA rank", run.line, "LoRA Rank")

    evaluations: list[Evaluation] = []
    es = by_title.get("evaluation") or by_title.get("evaluations")
    plan = by_title.get("evaluation plan")
    if es is not None and es.tables:
        evaluations = _parse_evaluations(c, es.tables[0])
    elif es is not None and (es.paragraphs or es.bullets):
        line = es.paragraphs[0][2] if es.paragraphs else es.line
        c.error("the Evaluation section has text but no table ck can read "
                "(a table needs a |---| line with one cell per column)", line, "Evaluation")
    elif tasks_table is not None or plan is not None:
        evaluations = _original_evaluations(c, tasks_table, plan, [r.name for r in runs])
    evaluations = _resolve_epochs(c, evaluations, stated.get("epochs", BY_KEY["epochs"].default))
    _check_evaluations(c, evaluations, {r.name for r in runs})

    if (vs := by_title.get("variables")) and vs.tables:
        _check_variables(c, vs.tables[0], runs)

    status: list[StatusRow] = []
    if (ss := by_title.get("status")) and ss.tables:
        status = _parse_status(ss.tables[0])

    search = None
    if (sr := by_title.get("search")) is not None:
        search = read_section([b for items in sr.bullets.values() for b in items],
                              [(t.headers, t.rows, t.line) for t in sr.tables], sr.line, path, c.error,
                              epochs=stated.get("epochs"))
    if not c.errors and (search is not None or any(r.trial is not None for r in runs)):
        planned = Experiment(name=title, settings=tuple(stated.items()), runs=tuple(runs),
                             evaluations=tuple(evaluations), search=search)
        problems, notes = plan_problems(planned)
        for message, line, fld, hint in problems:
            c.error(message, line, fld, hint)
        for note in notes:
            c.warn(note, search.line if search else None)

    if c.errors:
        raise CkErrors(c.errors) if len(c.errors) > 1 else c.errors[0]

    lines = text.splitlines()
    h2 = [s for s in sections]
    others = []
    for idx, s in enumerate(h2):
        if s.title.strip().lower() in KNOWN_SECTIONS:
            continue
        end = h2[idx + 1].line - 1 if idx + 1 < len(h2) else len(lines)
        body = "\n".join(lines[s.line:end]).strip("\n")
        others.append((s.title.strip(), body))

    return Experiment(
        name=title, experiment_dir=experiment_dir, tools=tools, models=tuple(models.items()),
        dataset=dataset, question=question, settings=tuple(stated.items()), runs=tuple(runs),
        evaluations=tuple(evaluations), status=tuple(status), other_sections=tuple(others),
        warnings=tuple(c.warnings), search=search,
    )


def MarkdownIt_commonmark():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table")


def _check_dataset_path(c: _Collector, val: str, line: int) -> None:
    suffix = Path(val).suffix.lower()
    if suffix and suffix not in (".json", ".parquet"):
        c.error(f"dataset {val[:120]!r}: {suffix} files are not supported", line, "Dataset",
                hint="use a .json file {\"train\": [...], \"validation\": [...], \"test\": [...]} "
                     "or a directory of train/validation/test .parquet files")


def _resolve_epochs(c: _Collector, evals: list[Evaluation], epochs: int) -> list[Evaluation]:
    from dataclasses import replace

    out = []
    for ev in evals:
        if ev.epoch_spec == "all":
            ev = replace(ev, epochs=tuple(range(epochs)))
        elif ev.epoch_spec == "last":
            ev = replace(ev, epochs=(epochs - 1,))
        out.append(ev)
    return out


def _check_evaluations(c: _Collector, evals: list[Evaluation], run_names: set[str]) -> None:
    seen: dict[str, list[Evaluation]] = {}
    for e in evals:
        if not SAFE_NAME.fullmatch(e.task) or ".." in e.task or len(e.task) > 100:
            c.error(f"unsafe task name {e.task[:60]!r}: use letters, digits, '.', '_', '+', '-' "
                    "(it names files under eval/)", e.line, "Task")
        if e.split is not None and (not SAFE_NAME.fullmatch(e.split) or ".." in e.split):
            c.error(f"unsafe split name {e.split[:60]!r}", e.line, "Split")
        for r in e.runs:
            if r not in run_names:
                c.error(f"run {r!r} of task {e.task!r} is not in the runs table", e.line, "Runs")
        for other in seen.get(e.task, []):
            if not e.runs or not other.runs or set(e.runs) & set(other.runs):
                c.error(f"task {e.task!r} listed twice for the same runs (first on line {other.line})", e.line,
                        "Task", hint="give each row of one task its own runs (Runs column)")
                break
        seen.setdefault(e.task, []).append(e)


def _check_variables(c: _Collector, table: _Table, runs: list[Run]) -> None:
    """The original layout's Variables table (Factor | Levels): checked against the runs table."""
    if len(table.headers) < 2:
        return
    for line, cells in table.rows:
        if len(cells) < 2:
            continue
        factor, levels = cells[0].strip(), cells[1]
        s = lookup_column(factor)
        if s is None:
            if norm(factor) not in ("model", "models"):
                c.warn(f"Variables factor {factor[:60]!r} is not a setting ck knows; only the runs table counts",
                       line)
            continue
        planned = set()
        for level in re.split(r"[,;]", levels):
            if level.strip():
                try:
                    v = s.parse_text(level)
                except ValueError:
                    c.warn(f"Variables level {level.strip()[:40]!r} of {factor!r} is not a valid {s.name}", line)
                    continue
                planned.add(tuple(v) if isinstance(v, list) else v)
        actual = {r.value(s.key) for r in runs if r.finetuned and r.value(s.key) is not None}
        if planned and planned != actual:
            fmt = lambda vals: ", ".join(sorted(s.format(list(v) if isinstance(v, tuple) else v) for v in vals))
            c.warn(f"Variables lists {s.name} {fmt(planned)} but the runs table has {fmt(actual) or 'none'}; "
                   "ck follows the runs table", line)


def load_experiment(path: str | Path) -> Experiment:
    """Parse an experiment_summary.md (or the one inside a directory)."""
    p = Path(path)
    if p.is_dir():
        p = p / layout.SUMMARY
    if not p.exists():
        raise CkError("experiment_summary.md not found", file=p,
                      hint="run `ck design` first, or pass the experiment directory")
    try:
        with open(p, "rb") as fh:
            raw = fh.read(MAX_SUMMARY_BYTES + 1)
    except OSError as exc:
        raise CkError(f"cannot read: {exc.strerror}", file=p) from None
    if len(raw) > MAX_SUMMARY_BYTES:
        raise CkError(f"larger than {MAX_SUMMARY_BYTES // (1024 * 1024)} MiB: not an experiment summary", file=p)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise CkError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=p, line=line) from None
    return parse_summary_text(text, str(p))
