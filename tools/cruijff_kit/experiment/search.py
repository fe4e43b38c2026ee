"""The search in a plan (`## Search` of experiment_summary.md): what is searched, how, and its limits.

A search is trials of one configuration space, each an ordinary Fine-tuned run of the runs table
(its sampled values are the run's own settings; the `Trial` column numbers it), trained in rungs:
after `rung_epochs[k]` epochs the metric decides which trials go on (ASHA: successive halving by
the reduction factor eta). The trials are sampled when the plan is designed, with Optuna's sampler
seeded by the plan's seed (RandomSampler for asha, TPESampler for tpe), so the same command gives
the same plan and the plan says exactly what may be trained. Promotion and pruning are the
run-time's (run/); this module is the plan side: the types, the text of the section, the checks
(design and parse refuse the same things) and the sampling.

Optuna is imported inside the functions that need it (`ck` starts fast).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import CkError
from ..settings import BY_KEY, Setting, lookup, lookup_column
from ..util.numbers import format_float
from .model import Evaluation, Experiment, Run

ALGORITHMS = ("asha", "tpe")
DIRECTIONS = ("minimize", "maximize")
VAL_LOSS = "val_loss"
VALIDATION_SPLIT = "validation"  # the split a task metric is measured on (never the test split)
MAX_TRIALS = 10_000
MAX_RUNGS = 20
SIGNIFICANT = 3  # sampled floats keep 3 significant digits: readable values and run names
# metrics the scorers ck knows report: inspect's built-in scorers (accuracy, mean) and those of
# `ck task new` (classification: balanced_accuracy, macro_f1, f1_<label>; regression: mae, rmse)
KNOWN_METRICS = ("accuracy", "mean", "balanced_accuracy", "macro_f1", "mae", "rmse")
_LOWER_BETTER = ("loss", "mae", "rmse", "mse", "error", "perplexity")
# inspect's built-in scorers, whose metrics are accuracy (f1: mean)
_BUILTIN_SCORERS = ("includes", "match", "exact", "pattern", "answer", "choice", "f1", "model_graded_qa",
                    "model_graded_fact")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


@dataclass(frozen=True)
class Dimension:
    key: str                    # setup key from settings.py, e.g. "learning_rate", "lora_rank"
    low: float | None = None    # range: low..high (inclusive), low < high
    high: float | None = None
    log: bool = False           # ":log" suffix: sampled log-uniformly
    integer: bool = False       # the setting is an int (e.g. lora_rank range 4..64)
    choices: tuple = ()         # categorical: the values, typed per the setting
    line: int | None = field(default=None, compare=False)

    @property
    def setting(self) -> Setting:
        return BY_KEY[self.key]

    @property
    def is_range(self) -> bool:
        return not self.choices


@dataclass(frozen=True)
class Search:
    algorithm: str              # "asha" | "tpe"
    trials: int
    rungs: int = 3
    reduction_factor: int = 3   # eta
    # epochs trained when each rung is decided; strictly increasing; the last is the plan's Epochs
    rung_epochs: tuple[int, ...] = ()
    metric: str = VAL_LOSS      # "val_loss" or "TASK:METRIC" (e.g. "capitalization:accuracy")
    direction: str = "minimize"
    seed: int = 0
    budget_gpu_hours: float | None = None
    space: tuple[Dimension, ...] = ()
    line: int | None = field(default=None, compare=False)
    # where each field was written (summary line or spec line), for messages: ((key, line), ...)
    lines: tuple[tuple[str, int], ...] = field(default=(), compare=False)

    @property
    def metric_task(self) -> str | None:
        return self.metric.split(":", 1)[0] if ":" in self.metric else None

    @property
    def metric_name(self) -> str:
        return self.metric.split(":", 1)[1] if ":" in self.metric else self.metric

    def line_of(self, key: str) -> int | None:
        return dict(self.lines).get(key, self.line)

    def dimension(self, key: str) -> Dimension | None:
        return next((d for d in self.space if d.key == key), None)

    def rung_of_epoch(self, epochs_trained: int) -> int | None:
        """The rung decided after `epochs_trained` epochs (0-based rung), or None."""
        return self.rung_epochs.index(epochs_trained) if epochs_trained in self.rung_epochs else None


# ---- fields: one table for the summary's labels, the flags and the spec keys ------------------------

# key -> (summary label, command-line flag)
FIELDS = {
    "algorithm": ("Algorithm", "--search"),
    "trials": ("Trials", "--trials"),
    "rungs": ("Rungs", "--rungs"),
    "reduction_factor": ("Reduction factor", "--reduction-factor"),
    "rung_epochs": ("Rung epochs", "--rung-epochs"),
    "metric": ("Metric", "--metric"),
    "direction": ("Direction", "--direction"),
    "seed": ("Seed", "--seed"),
    "budget_gpu_hours": ("Budget (GPU-hours)", "--budget-gpu-hours"),
}
_ALIASES = {"sampler": "algorithm", "eta": "reduction_factor", "budget": "budget_gpu_hours",
            "budget gpu hours": "budget_gpu_hours", "reduction factor": "reduction_factor",
            "rung epochs": "rung_epochs"}


def field_key(label: str) -> str | None:
    """A Search bullet's label or a spec key -> the field key ('Budget (GPU-hours)' -> budget_gpu_hours)."""
    words = re.sub(r"[^a-z0-9]+", " ", str(label).lower()).strip()
    if words.replace(" ", "_") in FIELDS:
        return words.replace(" ", "_")
    return _ALIASES.get(words)


def default_direction(metric: str) -> str:
    """val_loss, mae, rmse …: minimize; a task's accuracy, f1 …: maximize."""
    name = metric.split(":", 1)[-1].rsplit("/", 1)[-1].lower()
    return "minimize" if any(name == k or name.endswith(f"_{k}") for k in _LOWER_BETTER) else "maximize"


def default_rung_epochs(rungs: int, eta: int, epochs: int | None = None) -> tuple[int, ...]:
    """eta**k for k < rungs (1, 3, 9); with the plan's epochs stated, the same ratios ending there."""
    if rungs < 1 or eta < 2 or rungs > MAX_RUNGS:
        return ()
    if epochs is None:
        return tuple(eta ** k for k in range(rungs))
    return tuple(max(1, round(epochs / eta ** (rungs - 1 - k))) for k in range(rungs))


def _int(value: Any, key: str, err: Callable, *, minimum: int) -> int | None:
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,9}\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        err(f"expected a whole number, got {str(value)[:40]!r}", key)
        return None
    if value < minimum:
        err(f"must be >= {minimum}, got {value}", key)
        return None
    return value


def search_from_options(options: dict, err: Callable[[str, str, str | None], None], *,
                        epochs: int | None = None, space: tuple[Dimension, ...] = (),
                        line: int | None = None, lines: dict | None = None) -> Search | None:
    """Search fields by key (from flags, a spec's `search:` mapping or the summary's bullets; text or
    typed) -> Search, defaults resolved (rung epochs from `epochs`, the plan's stated Epochs, when the
    options do not give them; direction from the metric). Each problem goes to err(message, key, hint);
    None when there was one."""
    problems: list = []

    def e(message: str, key: str, hint: str | None = None) -> None:
        problems.append(1)
        err(message, key, hint)

    algorithm = str(options.get("algorithm") or "").strip().lower()
    if algorithm not in ALGORITHMS:
        e(f"unknown search algorithm {algorithm[:40]!r}" if algorithm else "a search needs an algorithm",
          "algorithm", f"use one of: {', '.join(ALGORITHMS)}")
    if options.get("trials") in (None, ""):
        e("a search needs a number of trials", "trials", "e.g. --trials 16")
        trials = None
    else:
        trials = _int(options["trials"], "trials", e, minimum=1)
    if trials is not None and trials > MAX_TRIALS:
        e(f"{trials} trials (at most {MAX_TRIALS})", "trials")
    rungs = _int(options.get("rungs", 3), "rungs", e, minimum=1)
    if rungs is not None and rungs > MAX_RUNGS:
        e(f"{rungs} rungs (at most {MAX_RUNGS})", "rungs")
        rungs = None
    eta = _int(options.get("reduction_factor", 3), "reduction_factor", e, minimum=2)
    seed = _int(options.get("seed", 0), "seed", e, minimum=0)
    rung_epochs: tuple[int, ...] = ()
    raw = options.get("rung_epochs")
    if raw not in (None, "", [], ()):
        parts = [p.strip() for p in raw.split(",")] if isinstance(raw, str) else list(raw) if isinstance(
            raw, (list, tuple)) else [raw]
        got = [_int(p, "rung_epochs", e, minimum=1) for p in parts]
        if all(g is not None for g in got):
            rung_epochs = tuple(got)
            if any(b <= a for a, b in zip(rung_epochs, rung_epochs[1:])):
                e(f"rung epochs {', '.join(map(str, rung_epochs))} are not strictly increasing", "rung_epochs",
                  "each rung trains longer than the one before, e.g. 1, 3, 9")
            elif rungs is not None and "rungs" in options and len(rung_epochs) != rungs:
                e(f"{len(rung_epochs)} rung epochs for {rungs} rungs", "rung_epochs",
                  "give one epoch count per rung (or leave the rung epochs out)")
            rungs = len(rung_epochs)
    elif rungs is not None and eta is not None:
        rung_epochs = default_rung_epochs(rungs, eta, epochs)
        if any(b <= a for a, b in zip(rung_epochs, rung_epochs[1:])):
            e(f"{rungs} rungs with reduction factor {eta} do not fit in {epochs} epoch(s): the rungs would "
              f"end after {', '.join(map(str, rung_epochs))} epochs", "rung_epochs",
              "give --rung-epochs (strictly increasing, the last one the plan's epochs), fewer rungs or more epochs")
    if rung_epochs and rung_epochs[-1] > BY_KEY["epochs"].maximum:
        e(f"the last rung trains {rung_epochs[-1]} epochs (at most {int(BY_KEY['epochs'].maximum)})", "rung_epochs")
    metric = str(options.get("metric") or VAL_LOSS).strip()
    if metric != VAL_LOSS:
        task, _, name = metric.partition(":")
        if not task or not name or not _NAME.fullmatch(task) or not _NAME.fullmatch(name):
            e(f"metric {metric[:60]!r} is neither val_loss nor TASK:METRIC", "metric",
              "e.g. val_loss or capitalization:accuracy")
    direction = str(options.get("direction") or default_direction(metric)).strip().lower()
    if direction not in DIRECTIONS:
        e(f"direction {direction[:40]!r} is not minimize or maximize", "direction")
    budget = options.get("budget_gpu_hours")
    if isinstance(budget, str):
        text = budget.strip()
        if text.lower() in ("", "-", "none", "n/a"):
            budget = None
        else:
            try:
                budget = float(text)
            except ValueError:
                e(f"expected a number of GPU-hours, got {text[:40]!r}", "budget_gpu_hours")
                budget = None
    if budget is not None:
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not math.isfinite(budget) \
                or budget <= 0:
            e(f"the budget must be a positive number of GPU-hours, got {str(budget)[:40]!r}", "budget_gpu_hours")
            budget = None
        else:
            budget = float(budget)
    if problems:
        return None
    return Search(algorithm=algorithm, trials=trials, rungs=rungs, reduction_factor=eta, rung_epochs=rung_epochs,
                  metric=metric, direction=direction, seed=seed, budget_gpu_hours=budget, space=space, line=line,
                  lines=tuple(sorted((lines or {}).items())))


# ---- the space: `1e-5..1e-3:log`, `4..32`, `8, 16` ------------------------------------------------

_RANGE = re.compile(r"^\s*(?P<low>[^.\s][^\s]*?)?\s*\.\.\s*(?P<high>[^:\s]*)\s*(?::\s*(?P<scale>\S*))?\s*$")


def is_range(text: str) -> bool:
    return isinstance(text, str) and ".." in text and not text.strip().startswith('"')


def vary_setting(name: str, file: str | None, line: int | None, fld: str) -> Setting:
    """The per-run setting a space row (or --vary) names; anything else cannot vary between runs."""
    s = lookup_column(name)
    if s is None:
        other = lookup(name)
        if other is not None:
            raise CkError(f"{other.name!r} is not a training setting: it cannot differ between trials",
                          file=file, line=line, field=fld)
        raise CkError(f"unknown setting {name[:60]!r} to search", file=file, line=line, field=fld,
                      hint="settings: skills/scaffold-torchtune/references/setup-fields.md")
    return s


def parse_range(s: Setting, text: str, file: str | None, line: int | None, fld: str) -> Dimension:
    """`low..high` or `low..high:log` of a number setting -> Dimension (refused: empty, inverted,
    log from <= 0, fractional ends of a whole-number setting, ends outside the setting's bounds)."""
    m = _RANGE.match(text)
    if s.kind not in ("int", "float"):
        raise CkError(f"{s.name} is not a number: a range {text.strip()[:40]!r} cannot be sampled", file=file,
                      line=line, field=fld, hint=f"give its choices instead, e.g. {s.name}=a,b")
    if m is None or not m.group("low") or not m.group("high"):
        raise CkError(f"empty range {text.strip()[:40]!r}: write LOW..HIGH", file=file, line=line, field=fld,
                      hint="e.g. 1e-5..1e-3:log or 4..32")
    scale = (m.group("scale") or "").lower()
    if m.group("scale") is not None and scale != "log":
        raise CkError(f"unknown scale {m.group('scale')[:20]!r} of a range (only ':log')", file=file, line=line,
                      field=fld)
    ends = []
    for end in (m.group("low"), m.group("high")):
        if s.kind == "int":
            if not re.fullmatch(r"[+-]?\d{1,19}", end):
                raise CkError(f"{s.name} is a whole number: the range end {end[:40]!r} is not", file=file,
                              line=line, field=fld, hint="e.g. 4..32")
            ends.append(int(end))
        else:
            try:
                ends.append(float(end))
            except ValueError:
                raise CkError(f"range end {end[:40]!r} is not a number", file=file, line=line, field=fld) from None
    low, high = ends
    if not low < high:
        raise CkError(f"{'empty' if low == high else 'inverted'} range {text.strip()[:40]!r}: the low end must be "
                      "below the high end", file=file, line=line, field=fld)
    if scale == "log" and low <= 0:
        raise CkError(f"a log range must start above 0, got {text.strip()[:40]!r}", file=file, line=line, field=fld)
    for end in (low, high):
        problem = s.problem(end)
        if problem:
            raise CkError(f"range end {problem}", file=file, line=line, field=fld)
    return Dimension(key=s.key, low=low, high=high, log=scale == "log", integer=s.kind == "int", line=line)


def split_choices(text: str) -> list[str]:
    """`8, 16` / `"a, b", c` -> items; commas inside double quotes (JSON) do not split."""
    items, cur, quoted, escaped = [], [], False, False
    for ch in text:
        if quoted:
            cur.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
        elif ch == '"':
            quoted = True
            cur.append(ch)
        elif ch == ",":
            items.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    items.append("".join(cur).strip())
    return items


def _typed(value):
    return tuple(value) if isinstance(value, list) else value


def parse_choices(s: Setting, values: list, file: str | None, line: int | None, fld: str) -> Dimension:
    """Choices (text items or typed values) -> a categorical Dimension."""
    if not values or any(isinstance(v, str) and not v.strip() for v in values):
        raise CkError("an empty choice", file=file, line=line, field=fld, hint="write e.g. 8,16")
    out = []
    for v in values:
        try:
            if isinstance(v, str):
                t = v.strip()
                if s.kind not in ("text", "choice", "name") and len(t) >= 2 and t[0] == t[-1] == '"':
                    t = json.loads(t)
                typed = s.parse_text(t)
            else:
                typed = float(v) if s.kind == "float" and isinstance(v, int) and not isinstance(v, bool) else v
                problem = s.problem(typed)
                if problem:
                    raise ValueError(problem)
        except (ValueError, json.JSONDecodeError) as exc:
            raise CkError(str(exc), file=file, line=line, field=fld) from None
        typed = _typed(typed)
        if typed in out:
            raise CkError(f"lists {s.format(list(typed) if isinstance(typed, tuple) else typed)} twice", file=file,
                          line=line, field=fld)
        out.append(typed)
    return Dimension(key=s.key, choices=tuple(out), integer=s.kind == "int", line=line)


def _number(d: Dimension, v: float) -> str:
    return str(int(v)) if d.integer else format_float(float(v))


def choice_text(s: Setting, value) -> str:
    text = s.format(list(value) if isinstance(value, tuple) else value)
    return json.dumps(text) if "," in text and not text.startswith('"') else text


def dimension_text(d: Dimension) -> str:
    """`1e-5..1e-3:log`, `4..32`, `8, 16`: what the Space table and --vary write."""
    if d.is_range:
        return f"{_number(d, d.low)}..{_number(d, d.high)}" + (":log" if d.log else "")
    return ", ".join(choice_text(d.setting, v) for v in d.choices)


def parse_dimension(name: str, text: str, file: str | None, line: int | None, fld: str) -> Dimension:
    s = vary_setting(name, file, line, fld)
    if is_range(text):
        return parse_range(s, text, file, line, fld)
    return parse_choices(s, split_choices(text), file, line, fld)


def contains(d: Dimension, value) -> bool:
    if d.is_range:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and d.low <= value <= d.high
    return _typed(value) in d.choices


# ---- summary section ------------------------------------------------------------------------------

def section_bullets(search: Search) -> list[tuple[str, str]]:
    """(label, text) of the `## Search` bullets, in order."""
    values = {
        "algorithm": search.algorithm, "trials": str(search.trials), "rungs": str(search.rungs),
        "reduction_factor": str(search.reduction_factor), "rung_epochs": ", ".join(map(str, search.rung_epochs)),
        "metric": search.metric, "direction": search.direction, "seed": str(search.seed),
        "budget_gpu_hours": "-" if search.budget_gpu_hours is None else format_float(search.budget_gpu_hours),
    }
    return [(FIELDS[k][0], values[k]) for k in FIELDS]


def space_rows(search: Search) -> list[tuple[str, str]]:
    """(setting column name, values text) per dimension."""
    return [(d.setting.column, dimension_text(d)) for d in search.space]


SPACE_HEADERS = {"setting": "setting", "parameter": "setting", "values": "values", "range": "values",
                 "choices": "values"}


def read_section(bullets: list[tuple[str, str, int]], tables: list[tuple[list[str], list[tuple[int, list[str]]], int]],
                 line: int, path: str, error: Callable[..., None], epochs: int | None = None) -> Search | None:
    """The `## Search` section (bullets: (label, value, line); tables: (headers, rows, line)) ->
    Search; each problem goes to error(message, line, field, hint)."""
    options: dict[str, str] = {}
    lines: dict[str, int] = {}
    for label, value, at in bullets:
        key = field_key(label)
        if key is None:
            error(f"unknown search field {label[:60]!r}", at, label[:60],
                  "fields: " + ", ".join(v[0] for v in FIELDS.values()))
            continue
        if key in options:
            error(f"{FIELDS[key][0]!r} is given twice (first on line {lines[key]})", at, label)
            continue
        options[key], lines[key] = value, at
    space: list[Dimension] = []
    if not tables:
        error("the search has no Space table (| Setting | Values |)", line, "Space",
              "one row per setting searched, e.g. | Learning rate | 1e-5..1e-3:log |")
    for headers, rows, tline in tables[:1]:
        cols = [SPACE_HEADERS.get(h.strip().lower()) for h in headers]
        if "setting" not in cols or "values" not in cols:
            error(f"the Space table needs columns Setting and Values (has: {', '.join(headers)})", tline, "Space")
            continue
        for at, cells in rows:
            row = {c: cells[i] for i, c in enumerate(cols) if c and i < len(cells)}
            name = row.get("setting", "").strip()
            try:
                d = parse_dimension(name, row.get("values", "").replace("\\|", "|"), path, at, name or "Setting")
            except CkError as exc:
                error(exc.message, at, exc.field, exc.hint)
                continue
            if any(x.key == d.key for x in space):
                error(f"{d.setting.name} is searched twice", at, name)
                continue
            space.append(d)
    if not space and tables:
        error("the search space is empty: nothing to search", line, "Space")
    return search_from_options(options, lambda m, k, h=None: error(m, lines.get(k, line), FIELDS[k][0], h),
                               epochs=epochs, space=tuple(space), line=line, lines=lines)


# ---- checks of a whole plan ----------------------------------------------------------------------

def task_metrics(script: str) -> tuple[set[str], bool] | None:
    """Metric names a task script's scorers report, read from its text (`@scorer(metrics=[accuracy(), …])`,
    inspect's built-in scorers), and whether per-label f1_<label> metrics are among them; None when the
    script cannot be read here (then known scorer metric names are accepted)."""
    try:
        text = Path(script).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    names: set[str] = set()
    per_label = False
    for block in re.findall(r"@scorer\s*\(\s*metrics\s*=\s*\[(.*?)\]", text, re.S):
        for fn in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", block):
            if fn == "f1_per_class":
                per_label = True
            else:
                names.add(fn)
    imported = set(re.findall(r"\b(" + "|".join(_BUILTIN_SCORERS) + r")\s*\(", text))
    if imported:
        names |= {"mean"} if imported == {"f1"} else {"accuracy"}
    if not names and not per_label:
        return None  # scorers built some other way: cannot be known statically
    return names, per_label


def metric_problem(search: Search, tasks: dict[str, str]) -> tuple[str | None, str | None, str | None]:
    """(refusal, hint, note) for the metric against the plan's tasks {name: script}; a note when the
    metric could not be checked against the script and was accepted as a known scorer metric."""
    task, name = search.metric_task, search.metric_name
    if task is None:
        return None, None, None
    if task not in tasks:
        return (f"metric {search.metric!r}: no task {task!r} in the plan",
                "tasks: " + (", ".join(tasks) or "none") + " (add the task, or search on val_loss)", None)
    found = task_metrics(tasks[task])
    if found is None:
        if name in KNOWN_METRICS or name.startswith("f1_"):
            return None, None, (f"metric {search.metric!r}: which metrics task {task!r} reports cannot be read from "
                                f"its script here; accepted {name!r} as a known scorer metric")
        return (f"metric {name!r} is not one ck's scorers report", "known: " + ", ".join(KNOWN_METRICS), None)
    names, per_label = found
    if name in names or (per_label and name.startswith("f1_")):
        return None, None, None
    return (f"task {task!r} does not report a metric {name!r}",
            "its scorers report: " + ", ".join(sorted(names) + (["f1_<label>"] if per_label else [])), None)


def rung_task_name(task: str) -> str:
    """The evaluation design adds to measure a task metric on the validation split."""
    return f"{task}_{VALIDATION_SPLIT}"


def rung_evaluation(exp: Experiment) -> Evaluation | None:
    """The evaluation whose score decides the rungs (a task metric on the validation split at every
    rung epoch, for every trial); None for val_loss (the training's own validation loss)."""
    search = exp.search
    if search is None or search.metric_task is None:
        return None
    trials = [r.name for _, r in exp.trials()]
    needed = {e - 1 for e in search.rung_epochs}
    for name in (rung_task_name(search.metric_task), search.metric_task):
        for ev in exp.evaluations:
            if ev.task != name or exp.eval_split(ev) != VALIDATION_SPLIT:
                continue
            if all(ev.applies_to(t) for t in trials) and needed <= set(ev.epochs):
                return ev
    return None


def _seconds(text: str) -> float | None:
    m = re.fullmatch(r"~?\s*(\d+(?:\.\d+)?)\s*([smh])", (text or "").strip())
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)] if m else None


def first_rung_gpu_hours(search: Search, trial_seconds: list[float | None], devices: int) -> float | None:
    """GPU-hours of training every trial to the first rung (None when a trial's time is unknown)."""
    if not trial_seconds or any(s is None for s in trial_seconds):
        return None
    return sum(trial_seconds) * max(devices, 1) / 3600


def budget_problem(search: Search, hours: float | None) -> str | None:
    if search.budget_gpu_hours is None or hours is None or hours <= search.budget_gpu_hours:
        return None
    return (f"the budget of {format_float(search.budget_gpu_hours)} GPU-hours is smaller than one rung: training "
            f"all {search.trials} trials for {search.rung_epochs[0]} epoch(s) takes about {hours:.3g} GPU-hours")


def plan_problems(exp: Experiment) -> tuple[list[tuple[str, int | None, str, str | None]], list[str]]:
    """What a plan with a search must hold, against its runs, tasks and settings:
    ([(message, line, field, hint)], [notes])."""
    search = exp.search
    out: list[tuple[str, int | None, str, str | None]] = []
    notes: list[str] = []
    if search is None:
        for r in exp.runs:
            if r.trial is not None:
                out.append((f"run {r.name!r} is a search trial but the plan has no '## Search' section", r.line,
                            "Trial", "add the Search section, or write '-' in the Trial column"))
        return out, notes
    label = lambda k: FIELDS[k][0]  # noqa: E731
    if exp.epochs != search.rung_epochs[-1]:
        out.append((f"the last rung trains {search.rung_epochs[-1]} epoch(s) but the plan's Epochs is {exp.epochs}",
                    search.line_of("rung_epochs"), label("rung_epochs"), "the last rung epoch is the plan's Epochs"))
    if search.metric == VAL_LOSS and not exp.validation:
        out.append(("the search decides on val_loss but validation during training is off",
                    search.line_of("metric"), label("metric"), "set 'Validation during training: true'"))
    refusal, hint, note = metric_problem(search, {e.task: e.script for e in exp.evaluations})
    if refusal:
        out.append((refusal, search.line_of("metric"), label("metric"), hint))
    elif note:
        notes.append(note)
    if not search.space:
        out.append(("the search space is empty: nothing to search", search.line, "Space", None))
    trials = exp.trials()
    numbers = [n for n, _ in trials]
    if numbers != list(range(search.trials)):
        out.append((f"the search has {search.trials} trial(s) but the runs table numbers "
                    f"{len(numbers)} ({', '.join(map(str, numbers[:10]))}{' …' if len(numbers) > 10 else ''})",
                    search.line_of("trials"), label("trials"), "number the trials 0 .. Trials-1, once each"))
    for _, run in trials:
        for d in search.space:
            value = exp.value(d.key, run)
            if not contains(d, value):
                s = d.setting
                out.append((f"trial {run.name!r} has {s.name} {s.format(list(value) if isinstance(value, tuple) else value)}"
                            f", outside the search space {dimension_text(d)}", run.line, s.column, None))
    if search.metric_task and not refusal and rung_evaluation(exp) is None:
        out.append((f"no evaluation measures {search.metric!r} on the {VALIDATION_SPLIT} split at every rung epoch "
                    f"({', '.join(str(e - 1) for e in search.rung_epochs)}, 0-based) of every trial",
                    search.line_of("metric"), label("metric"),
                    f"add an Evaluation row {rung_task_name(search.metric_task)!r} (split {VALIDATION_SPLIT}) "
                    "or let `ck design` add it"))
    if not out and search.budget_gpu_hours is not None:
        # from the runs table's Est. Time (the whole run), scaled to the first rung's epochs
        seconds = [_seconds(r.est_time) for _, r in trials]
        scale = search.rung_epochs[0] / max(exp.epochs, 1)
        hours = first_rung_gpu_hours(search, [s * scale if s is not None else None for s in seconds],
                                     exp.gpus * exp.value("num_nodes"))
        problem = budget_problem(search, hours)
        if problem:
            out.append((problem, search.line_of("budget_gpu_hours"), label("budget_gpu_hours"),
                        "raise the budget, or search fewer trials / a shorter first rung"))
        elif hours is None:
            notes.append("the search budget is not checked: a trial's Est. Time is unknown")
    return out, notes


# ---- sampling (Optuna) ---------------------------------------------------------------------------

def optuna_distributions(search: Search) -> dict[str, Any]:
    """Optuna distributions of the space, by setup key: FloatDistribution / IntDistribution for ranges,
    CategoricalDistribution of the choices' summary text for choices (Optuna's choices are scalars)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for d in search.space:
        if not d.is_range:
            out[d.key] = CategoricalDistribution([choice_text(d.setting, v) for v in d.choices])
        elif d.integer:
            out[d.key] = IntDistribution(int(d.low), int(d.high), log=d.log)
        else:
            out[d.key] = FloatDistribution(float(d.low), float(d.high), log=d.log)
    return out


def optuna_params(search: Search, values: dict[str, Any]) -> dict[str, Any]:
    """A trial's setting values (by setup key) as Optuna sees them (for study.add_trial / tell)."""
    out = {}
    for d in search.space:
        v = values[d.key]
        out[d.key] = choice_text(d.setting, v) if not d.is_range else (int(v) if d.integer else float(v))
    return out


def from_optuna(search: Search, params: dict[str, Any]) -> dict[str, Any]:
    """Optuna params -> setting values (categorical text back to typed values; floats rounded to
    SIGNIFICANT digits inside the range)."""
    out: dict[str, Any] = {}
    for d in search.space:
        v = params[d.key]
        if not d.is_range:
            out[d.key] = next(c for c in d.choices if choice_text(d.setting, c) == v)
        elif d.integer:
            out[d.key] = int(v)
        else:
            out[d.key] = min(max(float(f"{float(v):.{SIGNIFICANT - 1}e}"), d.low), d.high)
    return out


def sample_trials(search: Search) -> list[dict[str, Any]]:
    """The trials' values, by setup key, in trial order: an in-memory Optuna study seeded by the
    search's seed asks `trials` times (RandomSampler for asha, TPESampler for tpe). Deterministic."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = (optuna.samplers.RandomSampler(seed=search.seed) if search.algorithm == "asha"
               else optuna.samplers.TPESampler(seed=search.seed))
    study = optuna.create_study(sampler=sampler, direction=search.direction)
    dists = optuna_distributions(search)
    return [from_optuna(search, study.ask(dists).params) for _ in range(search.trials)]


def trial_prefix(number: int, trials: int) -> str:
    """`t00`, `t01`, … (`t000` from 100 trials): the trial number that keeps run names unique."""
    return f"t{number:0{max(2, len(str(max(trials - 1, 0))))}d}"
