"""What the numbers say, per task: comparisons with the control, main effects of each varied
parameter, their interaction, the best run - and the short answer report.md opens with.

Everything is computed at one common epoch: the last epoch any fine-tuned run was evaluated at.
A run without a result at that epoch is left out (and named), never mixed in with an earlier
epoch's number. Differences carry a standard error (stats.py); under 2 SE they are "within noise".
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import stats
from .results import Results, Row, format_param


@dataclass
class Cell:
    run: str
    value: float
    se: float | None


@dataclass
class LevelMean:
    param: str
    level: str
    value: float
    se: float | None
    runs: list[str]

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class MainEffect:
    """Mean metric per level of one parameter; `effect` = best level mean - worst level mean."""
    param: str
    levels: list[LevelMean]
    best_level: str
    worst_level: str
    effect: stats.Difference

    def to_dict(self) -> dict:
        return {"param": self.param, "levels": [lv.to_dict() for lv in self.levels], "best_level": self.best_level,
                "worst_level": self.worst_level, "effect": self.effect.to_dict()}


@dataclass
class Interaction:
    """Effect of `a` (its last level minus its first) at the first and last level of `b`; the
    interaction is the difference between the two (for a 2 x 2 grid, the classical contrast)."""
    a: str
    b: str
    a_levels: tuple[str, str]
    b_levels: tuple[str, str]
    simple: list[tuple[str, stats.Difference]]  # (level of b, effect of a there)
    interaction: stats.Difference

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "a_levels": list(self.a_levels), "b_levels": list(self.b_levels),
                "simple_effects": [{"b_level": lv, **d.to_dict()} for lv, d in self.simple],
                "interaction": self.interaction.to_dict()}


@dataclass
class Comparison:
    run: str
    value: float
    se: float | None
    diff: stats.Difference
    verdict: str  # "better" | "worse" | "within noise" | "SE unknown"

    def to_dict(self) -> dict:
        return {"run": self.run, "value": self.value, "se": self.se, "delta": self.diff.value,
                "delta_se": self.diff.se, "within_noise": self.diff.within_noise, "verdict": self.verdict}


@dataclass
class TaskFindings:
    task: str
    metric: str
    epoch: int | None
    lower_better: bool
    cells: dict[str, Cell] = field(default_factory=dict)      # fine-tuned run -> result at `epoch`
    left_out: list[str] = field(default_factory=list)         # fine-tuned runs without that epoch
    control: Cell | None = None
    comparisons: list[Comparison] = field(default_factory=list)
    effects: list[MainEffect] = field(default_factory=list)
    interaction: Interaction | None = None
    grid_complete: bool = True
    best: dict | None = None
    tied: list[str] = field(default_factory=list)
    answer: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"task": self.task, "metric": self.metric, "epoch": self.epoch, "lower_is_better": self.lower_better,
                "left_out": self.left_out, "grid_complete": self.grid_complete,
                "control": None if self.control is None else dict(self.control.__dict__),
                "comparisons": [c.to_dict() for c in self.comparisons],
                "main_effects": [e.to_dict() for e in self.effects],
                "interaction": None if self.interaction is None else self.interaction.to_dict(),
                "best": self.best, "tied": self.tied, "answer": self.answer}


def num(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def diff_text(d: stats.Difference) -> str:
    """'+0.250 (SE 0.061)' / '+0.020 (SE 0.050, within noise)' / '+0.100 (SE unknown)'."""
    if d.se is None:
        return f"{num(d.value, True)} (SE unknown)"
    return f"{num(d.value, True)} (SE {d.se:.3f}{', within noise' if d.within_noise else ''})"


def _mean(cells: list[Cell]) -> tuple[float, float | None]:
    value = sum(c.value for c in cells) / len(cells)
    se = stats.combined_se(*(c.se for c in cells))
    return value, None if se is None else se / len(cells)


def _common_epoch(rows: list[Row], task: str) -> int | None:
    epochs = [int(k) for r in rows for k, v in r.all_epochs.get(task, {}).items() if k != "base" and v is not None]
    return max(epochs) if epochs else None


def findings(results: Results, task: str) -> TaskFindings:
    # eval-only rows (models not trained here) have no epochs and no grid levels: their difference
    # from the control is in their own row (results.py), not in the fine-tuned runs' findings
    ft = [r for r in results.rows if r.trained]
    metric = results.metric_name(task)
    f = TaskFindings(task=task, metric=metric, epoch=_common_epoch(ft, task),
                     lower_better=stats.lower_is_better(metric))
    sign = -1.0 if f.lower_better else 1.0
    key = None if f.epoch is None else str(f.epoch)
    for r in ft:
        v = r.all_epochs.get(task, {}).get(key) if key else None
        if v is None:
            if r.all_epochs.get(task):
                f.left_out.append(r.run)
            continue
        f.cells[r.run] = Cell(r.run, v, r.all_epochs_se[task].get(key))
    control = results.control
    if control is not None and control.metrics.get(task) is not None:
        f.control = Cell(control.run, control.metrics[task], control.se.get(task))
        for c in f.cells.values():
            d = stats.difference(c.value, c.se, f.control.value, f.control.se)
            verdict = ("SE unknown" if d.within_noise is None else "within noise" if d.within_noise
                       else "better" if sign * d.value > 0 else "worse")
            f.comparisons.append(Comparison(c.run, c.value, c.se, d, verdict))
    if f.cells:
        top = max(sign * c.value for c in f.cells.values())
        winners = [c for c in f.cells.values() if sign * c.value == top]
        if len(winners) > 1:
            f.tied = [c.run for c in winners]
        else:
            w = winners[0]
            comp = next((c for c in f.comparisons if c.run == w.run), None)
            row = next(r for r in ft if r.run == w.run)
            f.best = {"run": w.run, "directory": row.directory, "task": task, "metric": metric, "epoch": f.epoch,
                      "value": w.value, "se": w.se, "params": row.params,
                      "delta_vs_control": None if comp is None else comp.diff.value,
                      "delta_se": None if comp is None else comp.diff.se,
                      "within_noise": None if comp is None else comp.diff.within_noise,
                      "beats_control": None if comp is None else comp.verdict == "better"}
    _effects(results, ft, f, sign)
    f.answer = _answer(results, f, sign)
    return f


def _effects(results: Results, ft: list[Row], f: TaskFindings, sign: float) -> None:
    params = [p for p in results.varying if len({r.params.get(p) for r in ft}) > 1]
    rows = [r for r in ft if r.run in f.cells]
    if not params or len(rows) < 2:
        return
    levels = {p: sorted({r.params[p] for r in ft}, key=_sort_key) for p in params}
    expected = 1
    for p in params:
        expected *= len(levels[p])
    f.grid_complete = len(rows) == expected == len(ft)
    if not f.grid_complete:
        return  # level means over an incomplete grid mix in the other parameters: no main effects
    for p in params:
        means = []
        for lv in levels[p]:
            cells = [f.cells[r.run] for r in rows if r.params[p] == lv]
            if cells:
                value, se = _mean(cells)
                means.append(LevelMean(p, format_param(lv), value, se, [c.run for c in cells]))
        if len(means) < 2:
            continue
        # sorted, not max/min: on a tie max and min return the same level ("rank 4 -> 4")
        ordered = sorted(means, key=lambda m: sign * m.value)
        worst, best = ordered[0], ordered[-1]
        f.effects.append(MainEffect(p, means, best.level, worst.level,
                                    stats.difference(best.value, best.se, worst.value, worst.se)))
    f.effects.sort(key=lambda e: -abs(e.effect.value))
    if len(params) >= 2:
        a, b = params[0], params[1]
        la, lb = (levels[a][0], levels[a][-1]), (levels[b][0], levels[b][-1])

        def cell(va, vb) -> Cell | None:
            hits = [f.cells[r.run] for r in rows if r.params[a] == va and r.params[b] == vb]
            if not hits:
                return None
            value, se = _mean(hits)  # more than one only when a third parameter varies too
            return Cell("", value, se)

        corners = {(va, vb): cell(va, vb) for va in la for vb in lb}
        if all(c is not None for c in corners.values()):
            simple = [(format_param(vb), stats.difference(corners[(la[1], vb)].value, corners[(la[1], vb)].se,
                                                          corners[(la[0], vb)].value, corners[(la[0], vb)].se))
                      for vb in lb]
            inter = stats.Difference(simple[1][1].value - simple[0][1].value,
                                     stats.combined_se(*(c.se for c in corners.values())))
            f.interaction = Interaction(a, b, (format_param(la[0]), format_param(la[1])),
                                        (format_param(lb[0]), format_param(lb[1])), simple, inter)


def _evaluated_only_answer(results: Results, f: TaskFindings, sign: float) -> list[str]:
    """No fine-tuned result (an eval-only experiment, or training not evaluated yet): the models
    that were evaluated answer, best first, each against the control when there is one."""
    metric = f.metric.rsplit("/", 1)[-1] or "metric"
    scored = sorted((r for r in results.rows if not r.trained and not r.control and r.metrics.get(f.task) is not None),
                    key=lambda r: -sign * r.metrics[f.task])
    pending = ([f"No fine-tuned run has a successful {f.task} evaluation yet."]
               if any(r.trained for r in results.rows) else [])
    if not scored:
        return pending or [f"No run has a successful {f.task} evaluation yet."]
    parts = []
    for r in scored:
        text = f"{r.run} {num(r.metrics[f.task])}" + ("" if r.se.get(f.task) is None else f" (SE {r.se[f.task]:.3f})")
        if f.control is not None:
            text += f", {diff_text(stats.difference(r.metrics[f.task], r.se.get(f.task), f.control.value, f.control.se))}" \
                    f" vs the control"
        parts.append(text)
    control = "" if f.control is None else f"; control {f.control.run} {num(f.control.value)}"
    top = [r for r in scored if r.metrics[f.task] == scored[0].metrics[f.task]]
    best = (f"Best evaluated model: **{scored[0].run}**" if len(top) == 1
            else f"No single best evaluated model: {', '.join(r.run for r in top)} tie")
    return pending + [f"{best} on {f.task} {metric}.",
                      f"Evaluated models (not trained here) on {f.task} {metric}: {'; '.join(parts)}{control}."]


def _answer(results: Results, f: TaskFindings, sign: float) -> list[str]:
    """Short sentences, most important first; every number is one the report's tables show."""
    out: list[str] = []
    metric = f.metric.rsplit("/", 1)[-1] or "metric"
    where = f"{f.task} {metric}" + ("" if f.epoch is None else f" at epoch_{f.epoch}")
    if not f.cells:
        return _evaluated_only_answer(results, f, sign)
    if f.control is not None:
        better = [c for c in f.comparisons if c.verdict == "better"]
        if better:
            listed = ", ".join(f"{c.run} {diff_text(c.diff)}" for c in
                               sorted(better, key=lambda c: -sign * c.diff.value))
            out.append(f"{len(better)} of {len(f.comparisons)} fine-tuned runs beat the control "
                       f"({f.control.run}, {num(f.control.value)}) on {where}: {listed}.")
        else:
            ahead = max(f.comparisons, key=lambda c: sign * c.diff.value)
            if sign * ahead.diff.value > 0:
                detail = (f"the largest difference, {diff_text(ahead.diff)} for {ahead.run}, "
                          + ("has no standard error to judge it" if ahead.verdict == "SE unknown" else "is within noise"))
            elif ahead.diff.value == 0:
                detail = f"the best runs tie with it ({num(ahead.value)} vs {num(f.control.value)})"
            else:
                detail = f"every run scores worse (best {num(ahead.value)} vs {num(f.control.value)})"
            out.append(f"No run beats the control ({f.control.run}) on {where}: {detail}.")
    if f.tied:
        out.append(f"No single best run: {', '.join(f.tied)} tie at {num(f.cells[f.tied[0]].value)}.")
    elif f.best is not None:
        runner = sorted((c for c in f.cells.values() if c.run != f.best["run"]), key=lambda c: -sign * c.value)
        line = f"Best run: **{f.best['run']}**, {metric} {num(f.best['value'])}"
        line += "" if f.best["se"] is None else f" (SE {f.best['se']:.3f})"
        if runner:
            d = stats.difference(f.best["value"], f.best["se"], runner[0].value, runner[0].se)
            line += f"; next {runner[0].run} {num(runner[0].value)}, difference {diff_text(d)}"
        out.append(line + ".")
    if f.effects:
        parts = []
        for e in f.effects:
            parts.append(f"{e.param} {e.worst_level} -> {e.best_level}: {diff_text(e.effect)}")
        if len(f.effects) >= 2:
            first, second = f.effects[0], f.effects[1]
            gap = stats.Difference(abs(first.effect.value) - abs(second.effect.value),
                                   stats.combined_se(first.effect.se, second.effect.se))
            if gap.within_noise is False:
                out.append(f"{first.param} matters more than {second.param}: its main effect is "
                           f"{num(abs(first.effect.value))} vs {num(abs(second.effect.value))}, "
                           f"larger by {diff_text(gap)} ({'; '.join(parts)}).")
            else:
                out.append(f"The data cannot tell whether {first.param} or {second.param} matters more: "
                           f"main effects {num(abs(first.effect.value))} vs {num(abs(second.effect.value))} "
                           f"differ by {diff_text(gap)} ({'; '.join(parts)}).")
        else:
            e = f.effects[0]
            out.append(f"Effect of {e.param} (best level mean minus worst): {parts[0]}.")
    elif not f.grid_complete:
        have = len(f.cells)
        total = sum(r.trained for r in results.rows)
        out.append(f"No main effects: they need a result for every combination of {' x '.join(results.varying)}"
                   f"{'' if f.epoch is None else f' at epoch_{f.epoch}'}, and {have} of {total} fine-tuned runs have one.")
    if f.interaction is not None:
        i = f.interaction
        kind = ("no interaction beyond noise" if i.interaction.within_noise
                else "interaction SE unknown" if i.interaction.within_noise is None else "they interact")
        out.append(f"Interaction {i.a} x {i.b}: {kind} - the effect of {i.a} ({i.a_levels[0]} -> {i.a_levels[1]}) is "
                   + " and ".join(f"{num(d.value, True)} at {i.b}={lv}" for lv, d in i.simple)
                   + f", difference {diff_text(i.interaction)}.")
    if f.left_out:
        out.append(f"Left out (no epoch_{f.epoch} result): {', '.join(f.left_out)}.")
    return out


def _sort_key(v: object):
    return (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v))
