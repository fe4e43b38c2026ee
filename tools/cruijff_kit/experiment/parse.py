"""experiment_summary.md -> Experiment, with markdown-it-py.

Tolerant where people are (column order, header case, spacing, `-`/empty for not applicable,
`fine-tuned`/`Fine-tuned`), strict where a silent guess would waste GPU hours (unknown run type,
non-numeric rank or learning rate, duplicate run name, a run whose model is not in Resources,
an unknown tool). All problems of one file are reported together, each with file:line: field.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt

from ..errors import CkError, CkErrors
from .model import (
    SUPPORTED_EVALUATION,
    SUPPORTED_PREPARATION,
    Evaluation,
    Experiment,
    Run,
    RunType,
    StatusRow,
    Tools,
)

KNOWN_SECTIONS = {"quick reference", "tools", "resources", "configuration", "all runs",
                  "runs", "evaluation", "evaluations", "status"}

# normalised header -> field; anything else is kept verbatim in Run.extra
RUN_COLUMNS = {
    "run name": "name", "run": "name", "name": "name",
    "model": "model",
    "lora rank": "lora_rank", "rank": "lora_rank",
    "learning rate": "learning_rate", "lr": "learning_rate",
    "batch size": "batch_size", "bs": "batch_size",
    "type": "type",
    "est time": "est_time", "estimated time": "est_time", "est": "est_time", "time": "est_time",
}
EVAL_COLUMNS = {"task": "task", "script": "script", "task script": "script", "epochs": "epochs",
                "epoch": "epochs"}
STATUS_COLUMNS = {"run": "run", "job": "job", "job id": "job_id", "state": "state",
                  "duration": "duration"}
RUN_TYPES = {"fine-tuned": RunType.FINETUNED, "finetuned": RunType.FINETUNED,
             "fine tuned": RunType.FINETUNED, "fine-tune": RunType.FINETUNED,
             "control": RunType.CONTROL, "base": RunType.CONTROL, "baseline": RunType.CONTROL,
             "eval-only": RunType.EVAL_ONLY, "eval only": RunType.EVAL_ONLY, "evaluation only": RunType.EVAL_ONLY}
NOT_APPLICABLE = {"", "-", "—", "–", "n/a", "na", "none"}

# "**Key:** value" (the seeds' form) or "**Key**: value"
_BULLET = re.compile(r"^\*\*(?P<key>[^*]+?)\s*(?::\s*\*\*|\*\*\s*:)\s*(?P<val>.*)$", re.S)


def _norm_header(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower().replace(".", "")).strip()


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


@dataclass
class _Section:
    title: str
    line: int
    bullets: dict[str, list[tuple[str, str, int]]] = field(default_factory=dict)  # sub -> [(key,val,line)]
    tables: list[_Table] = field(default_factory=list)


class _Collector:
    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[CkError] = []

    def error(self, message: str, line: int | None, fld: str | None = None, hint: str | None = None):
        self.errors.append(CkError(message, file=self.path, line=line, field=fld, hint=hint))


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
            m = _BULLET.match(first)
            if m:
                sections[-1].bullets.setdefault(sub, []).append(
                    (m.group("key").strip(), _clean(m.group("val")), tok.map[0] + 1))
        elif tok.type == "table_open" and sections:
            i = _read_table(tokens, i, sections[-1])
            continue
        i += 1
    return title, title_line, sections


def _read_table(tokens, i: int, section: _Section) -> int:
    table = _Table(headers=[], rows=[], line=tokens[i].map[0] + 1)
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


def _parse_int(c: _Collector, text: str, line: int, fld: str, *, minimum: int) -> int | None:
    try:
        value = int(text)
    except ValueError:
        c.error(f"expected a whole number, got {text!r}", line, fld)
        return None
    if value < minimum:
        c.error(f"must be >= {minimum}, got {value}", line, fld)
        return None
    return value


def _parse_float(c: _Collector, text: str, line: int, fld: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        c.error(f"expected a number such as 1e-5, got {text!r}", line, fld)
        return None
    if not value > 0 or value != value or value == float("inf"):
        c.error(f"must be a positive number, got {text!r}", line, fld)
        return None
    return value


def _parse_bool(c: _Collector, text: str, line: int, fld: str) -> bool:
    low = text.strip().lower()
    if low in ("true", "yes", "on", "1"):
        return True
    if low in ("false", "no", "off", "0", ""):
        return False
    c.error(f"expected true or false, got {text!r}", line, fld)
    return False


def _parse_string(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text[1:-1]
    return text


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


def _parse_runs(c: _Collector, table: _Table, models: dict[str, str]) -> list[Run]:
    cols = _columns(c, table, RUN_COLUMNS, "All Runs")
    for required in ("name", "model", "type"):
        if required not in cols:
            c.error(f"the runs table has no {required.replace('_', ' ')!r} column "
                    f"(columns: {', '.join(table.headers)})", table.line, "All Runs")
            return []
    runs: list[Run] = []
    names: dict[str, int] = {}
    for line, cells in table.rows:
        values: dict[str, str] = {}
        extra: list[tuple[str, str]] = []
        for header, key, cell in zip(table.headers, cols, cells):
            if key:
                values[key] = cell
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
            c.error(f"unknown run type {type_text!r}", line, "Type",
                    hint="use 'Fine-tuned', 'Control' or 'Eval-only'")
            continue
        model = values.get("model", "").strip()
        if model not in models:
            known = ", ".join(models) or "none"
            c.error(f"model {model!r} of run {name!r} is not listed under Resources > Models "
                    f"(listed: {known})", line, "Model")
        rank = lr = bs = None
        rank_given = values.get("lora_rank", "").strip().lower() not in NOT_APPLICABLE
        if rank_given:
            rank = _parse_int(c, values["lora_rank"].strip(), line, "LoRA Rank", minimum=1)
        if values.get("learning_rate", "").strip().lower() not in NOT_APPLICABLE:
            lr = _parse_float(c, values["learning_rate"].strip(), line, "Learning Rate")
        if values.get("batch_size", "").strip().lower() not in NOT_APPLICABLE:
            bs = _parse_int(c, values["batch_size"].strip(), line, "Batch Size", minimum=1)
        if rtype is RunType.FINETUNED and not rank_given:
            c.error(f"fine-tuned run {name!r} needs a LoRA rank", line, "LoRA Rank")
        runs.append(Run(name=name, model=model, type=rtype, lora_rank=rank, learning_rate=lr,
                        batch_size=bs, est_time=_na_to_empty(values.get("est_time", "")),
                        extra=tuple(extra), line=line))
    return runs


def _na_to_empty(text: str) -> str:
    return "" if text.strip() in ("", "-", "—", "–") else text.strip()


def _parse_epochs(c: _Collector, text: str, line: int) -> tuple[int, ...]:
    parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
    if not parts:
        return (0,)
    out: list[int] = []
    for p in parts:
        v = _parse_int(c, p, line, "Epochs", minimum=0)
        if v is not None and v not in out:
            out.append(v)
    return tuple(out)


def _parse_evaluations(c: _Collector, table: _Table) -> list[Evaluation]:
    cols = _columns(c, table, EVAL_COLUMNS, "Evaluation")
    if "task" not in cols:
        c.error(f"the evaluation table has no 'Task' column (columns: {', '.join(table.headers)})",
                table.line, "Evaluation")
        return []
    evals: list[Evaluation] = []
    for line, cells in table.rows:
        values = {k: v for k, v in zip(cols, cells) if k}
        task = values.get("task", "").strip()
        if not task:
            c.error("task name is empty", line, "Task")
            continue
        evals.append(Evaluation(task=task, script=values.get("script", "").strip(),
                                epochs=_parse_epochs(c, values.get("epochs", "0"), line), line=line))
    return evals


def _parse_status(table: _Table) -> list[StatusRow]:
    cols = [STATUS_COLUMNS.get(_norm_header(h)) for h in table.headers]
    rows = []
    for _, cells in table.rows:
        values = {k: v.strip() for k, v in zip(cols, cells) if k}
        rows.append(StatusRow(**{k: values.get(k, "") for k in ("run", "job", "job_id", "state", "duration")}))
    return rows


def parse_summary_text(text: str, path: str = "experiment_summary.md") -> Experiment:
    md = MarkdownIt("commonmark").enable("table")
    tokens = md.parse(text)
    c = _Collector(path)
    title, _, sections = _walk(tokens)
    if not title:
        c.error("no '# experiment_name' title on the first heading", 1, "title")
        raise CkErrors(c.errors)

    by_title: dict[str, _Section] = {}
    for s in sections:
        by_title.setdefault(s.title.strip().lower(), s)

    experiment_dir = ""
    if (qr := by_title.get("quick reference")):
        for sub_items in qr.bullets.values():
            for key, val, _ in sub_items:
                if key.lower() in ("experiment", "experiment dir", "experiment directory"):
                    experiment_dir = val

    tools = Tools()
    if (ts := by_title.get("tools")):
        prep, ev = tools.preparation, tools.evaluation
        for key, val, line in [b for items in ts.bullets.values() for b in items]:
            tool = val.split()[0].lower() if val.split() else ""
            if key.lower() in ("model preparation", "preparation"):
                if tool not in SUPPORTED_PREPARATION:
                    c.error(f"unsupported model preparation tool {val!r}", line, "Model Preparation",
                            hint=f"supported: {', '.join(SUPPORTED_PREPARATION)}")
                prep = tool
            elif key.lower() in ("evaluation", "evaluation tool"):
                if tool not in SUPPORTED_EVALUATION:
                    c.error(f"unsupported evaluation tool {val!r}", line, "Evaluation",
                            hint=f"supported: {', '.join(SUPPORTED_EVALUATION)}")
                ev = tool
        tools = Tools(prep, ev)

    models: dict[str, str] = {}
    dataset = ""
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
    else:
        c.error("no '## Resources' section (models and dataset)", None, "Resources")

    cfg = {"epochs": 1, "gpus": 1, "batch_size": 4, "system_prompt": "", "validation": False}
    extra: list[tuple[str, str]] = []
    if (cs := by_title.get("configuration")):
        for key, val, line in [b for items in cs.bullets.values() for b in items]:
            k = _norm_header(key)
            if k == "epochs":
                cfg["epochs"] = _parse_int(c, val, line, "Epochs", minimum=1) or 1
            elif k in ("gpus", "gpu", "num gpus"):
                cfg["gpus"] = _parse_int(c, val, line, "GPUs", minimum=0)
                cfg["gpus"] = 1 if cfg["gpus"] is None else cfg["gpus"]
            elif k == "batch size":
                cfg["batch_size"] = _parse_int(c, val, line, "Batch size", minimum=1) or 4
            elif k == "system prompt":
                cfg["system_prompt"] = _parse_string(val)
            elif k in ("validation during training", "validation"):
                cfg["validation"] = _parse_bool(c, val, line, "Validation during training")
            else:
                extra.append((key, val))

    runs: list[Run] = []
    rt = by_title.get("all runs") or by_title.get("runs")
    if rt is None or not rt.tables:
        c.error("no '## All Runs' table", None, "All Runs")
    else:
        runs = _parse_runs(c, rt.tables[0], models)
        if not runs and not c.errors:
            c.error("the runs table has no rows", rt.tables[0].line, "All Runs")
        from .eval_only import CHECKPOINT_COLUMN, problems as eval_only_problems

        for message, line in eval_only_problems(runs):
            c.error(message, line, CHECKPOINT_COLUMN)

    evaluations: list[Evaluation] = []
    if (es := by_title.get("evaluation") or by_title.get("evaluations")) and es.tables:
        evaluations = _parse_evaluations(c, es.tables[0])
        seen: dict[str, int] = {}
        for e in evaluations:
            if e.task in seen:
                c.error(f"task {e.task!r} listed twice (first on line {seen[e.task]})", e.line, "Task")
            seen[e.task] = e.line or 0

    status: list[StatusRow] = []
    if (ss := by_title.get("status")) and ss.tables:
        status = _parse_status(ss.tables[0])

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
        dataset=dataset, epochs=cfg["epochs"], gpus=cfg["gpus"], batch_size=cfg["batch_size"],
        system_prompt=cfg["system_prompt"], validation=cfg["validation"], config_extra=tuple(extra),
        runs=tuple(runs), evaluations=tuple(evaluations), status=tuple(status),
        other_sections=tuple(others),
    )


def load_experiment(path: str | Path) -> Experiment:
    """Parse an experiment_summary.md (or the one inside a directory)."""
    p = Path(path)
    if p.is_dir():
        p = p / "experiment_summary.md"
    if not p.exists():
        raise CkError("experiment_summary.md not found", file=p,
                      hint="run `ck design` first, or pass the experiment directory")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CkError(f"not UTF-8 text ({exc.reason})", file=p) from None
    return parse_summary_text(text, str(p))
