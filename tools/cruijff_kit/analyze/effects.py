"""What the numbers say, per task: comparisons with the control, main effects of each varied
parameter, their interaction, the best run - and the short answer report.md opens with.

Everything is computed at one common epoch: the last epoch any fine-tuned run was evaluated at.
A run without a result at that epoch is left out (and named), never mixed in with an earlier
epoch's number. Runs scored on the same items are compared per item (significance.py: paired
SE; exact McNemar for 0/1 scores, a paired permutation test otherwise); without per-item scores, a
z-test on the two SEs. The p-values of one task's comparisons (each run vs the control, the top
run vs each other run, main effects, the interaction) are Holm-corrected together; a difference
whose corrected p is >= 0.05 is "within noise". "Best" is the set of runs within noise of the top.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from . import significance, stats
from .replicates import configurations
from .results import Results, Row, format_param
from .selection import Selection, select


@dataclass
class Cell:
    run: str
    value: float
    se: float | None
    samples: dict[str, float] = field(default_factory=dict, repr=False)  # sample id -> score
    ci: list[float] | None = None  # 95 % Wilson interval (0/1 scores)
    seed_var: float = 0.0  # variance of the value from the spread between training seeds (replicates.py)

    def to_dict(self) -> dict:
        return {"run": self.run, "value": self.value, "se": self.se, "ci": self.ci}


@dataclass
class LevelMean:
    param: str
    level: str
    value: float
    se: float | None
    runs: list[str]
    samples: dict[str, float] = field(default_factory=dict, repr=False)  # per-item mean over the runs
    seed_var: float = 0.0

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("samples", "seed_var")}


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
    verdict: str = ""  # "better" | "worse" | "within noise" | "SE unknown" (set after Holm's correction)
    ci: list[float] | None = None

    def to_dict(self) -> dict:
        return {"run": self.run, "value": self.value, "se": self.se, "ci": self.ci, "delta": self.diff.value,
                "delta_se": self.diff.se, "within_noise": self.diff.within_noise, "verdict": self.verdict,
                "test": self.diff.test, "p": self.diff.p, "p_holm": self.diff.p_holm}


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
    top: list[tuple[str, stats.Difference]] = field(default_factory=list)  # top run minus each other run
    best_set: list[str] = field(default_factory=list)  # the top run and the runs within noise of it
    tests: int = 0  # comparisons in this task's Holm family
    selection: Selection | None = None  # best run x epoch chosen on validation (else: chosen on test)
    answer: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"task": self.task, "metric": self.metric, "epoch": self.epoch, "lower_is_better": self.lower_better,
                "left_out": self.left_out, "grid_complete": self.grid_complete,
                "control": None if self.control is None else self.control.to_dict(),
                "comparisons": [c.to_dict() for c in self.comparisons],
                "main_effects": [e.to_dict() for e in self.effects],
                "interaction": None if self.interaction is None else self.interaction.to_dict(),
                "best": self.best, "tied": self.tied, "best_set": self.best_set, "holm_family": self.tests,
                "top_vs_others": [{"run": r, **d.to_dict()} for r, d in self.top],
                "selection": None if self.selection is None else self.selection.to_dict(), "answer": self.answer}


def num(v: float | None, signed: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def p_text(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def ci_text(ci: list[float] | None) -> str:
    return "-" if not ci else f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def diff_text(d: stats.Difference) -> str:
    """'+0.250 (SE 0.061, McNemar exact p=0.004, Holm p=0.012)' / '+0.020 (SE 0.050, ..., within noise)' /
    '+0.100 (SE unknown)'; without a test: '+0.250 (SE 0.061)' by the 2 SE rule."""
    if d.se is None and d.p is None:
        return f"{num(d.value, True)} (SE unknown)"
    parts = ["SE unknown" if d.se is None else f"SE {d.se:.3f}"]
    if d.p is not None:
        parts.append(f"{d.test} p={p_text(d.p)}")
    if d.p_holm is not None:
        parts.append(f"Holm p={p_text(d.p_holm)}")
    if d.within_noise:
        parts.append("within noise")
    return f"{num(d.value, True)} ({', '.join(parts)})"


def compare(value_a: float, se_a: float | None, samples_a: dict[str, float],
            value_b: float, se_b: float | None, samples_b: dict[str, float], seed_var: float = 0.0) -> stats.Difference:
    """A minus B: paired on the shared items when both have per-item scores whose means are the two
    values; else a z-test on the two SEs; else the difference alone. `seed_var` > 0 (means over
    training seeds): the paired item SE plus the seed variance of both sides, judged by a z-test."""
    d = stats.difference(value_a, se_a, value_b, se_b)
    pair = significance.paired(samples_a, samples_b) if samples_a and samples_b else None
    if pair is not None and math.isclose(pair.diff, d.value, abs_tol=1e-9):
        if seed_var > 0:
            se = math.sqrt((pair.se or 0.0) ** 2 + seed_var)
            return stats.Difference(d.value, se, "seed-aware z-test",
                                    significance.normal_two_sided(d.value / se) if se else (1.0 if d.value == 0 else 0.0))
        return stats.Difference(d.value, pair.se, pair.test, pair.p)
    if d.se and seed_var > 0:
        return stats.Difference(d.value, d.se, "seed-aware z-test", significance.normal_two_sided(d.value / d.se))
    if d.se:
        return stats.Difference(d.value, d.se, "z-test", significance.normal_two_sided(d.value / d.se))
    return d


def _mean(cells: list[Cell]) -> tuple[float, float | None, dict[str, float], float]:
    """Mean of the cells, its SE from theirs (independent), the per-item mean on the items all share,
    and its seed variance (sum of the cells' / k^2)."""
    value = sum(c.value for c in cells) / len(cells)
    se = stats.combined_se(*(c.se for c in cells))
    samples = significance.average_items([c.samples for c in cells]) if all(c.samples for c in cells) else {}
    if samples and not math.isclose(significance.mean(list(samples.values())), value, abs_tol=1e-9):
        samples = {}  # the cells were not scored on the same items: no per-item mean
    seed_var = sum(c.seed_var for c in cells) / len(cells) ** 2
    return value, None if se is None else se / len(cells), samples, seed_var


def _holm(f: TaskFindings) -> None:
    diffs = [c.diff for c in f.comparisons] + [d for _, d in f.top] + [e.effect for e in f.effects]
    if f.interaction is not None:
        diffs.append(f.interaction.interaction)
    tested = [d for d in diffs if d.p is not None]
    f.tests = len(tested)
    for d, adj in zip(tested, significance.holm([d.p for d in tested])):
        d.p_holm = adj


def _common_epoch(rows: list[Row], task: str) -> int | None:
    epochs = [int(k) for r in rows for k, v in r.all_epochs.get(task, {}).items() if k != "base" and v is not None]
    return max(epochs) if epochs else None


def _trained(results: Results) -> list[Row]:
    # eval-only rows (models not trained here) have no epochs and no grid levels: their difference
    # from the control is in their own row (results.py), not in the fine-tuned runs' findings
    # with seeds as replicates, the units compared are configurations (means over seeds)
    if results.replicate and not results.configs:
        results.configs = configurations(results)
    return results.configs if results.replicate else [r for r in results.rows if r.trained]


def evaluated_epochs(results: Results, task: str) -> list[int]:
    return sorted({int(k) for r in _trained(results) for k, v in r.all_epochs.get(task, {}).items()
                   if k != "base" and v is not None})


def findings(results: Results, task: str, epoch: int | None = None) -> TaskFindings:
    """What the numbers say at `epoch` (default: the last epoch any fine-tuned run was evaluated at)."""
    ft = _trained(results)
    metric = results.metric_name(task)
    f = TaskFindings(task=task, metric=metric, epoch=_common_epoch(ft, task) if epoch is None else epoch,
                     lower_better=stats.lower_is_better(metric))
    sign = -1.0 if f.lower_better else 1.0
    key = None if f.epoch is None else str(f.epoch)
    for r in ft:
        v = r.all_epochs.get(task, {}).get(key) if key else None
        if v is None:
            if r.all_epochs.get(task):
                f.left_out.append(r.run)
            continue
        f.cells[r.run] = Cell(r.run, v, r.all_epochs_se[task].get(key), r.all_samples.get(task, {}).get(key, {}),
                              r.all_epochs_ci.get(task, {}).get(key),
                              r.all_epochs_seed_var.get(task, {}).get(key, 0.0))
    control = results.control
    if control is not None and control.metrics.get(task) is not None:
        f.control = Cell(control.run, control.metrics[task], control.se.get(task),
                         control.all_samples.get(task, {}).get("base", {}), control.ci.get(task))
        for c in f.cells.values():
            d = compare(c.value, c.se, c.samples, f.control.value, f.control.se, f.control.samples, c.seed_var)
            f.comparisons.append(Comparison(c.run, c.value, c.se, d, ci=c.ci))
    ranked = sorted(f.cells.values(), key=lambda c: -sign * c.value)
    if ranked:
        first = ranked[0]
        f.top = [(c.run, compare(first.value, first.se, first.samples, c.value, c.se, c.samples,
                                 first.seed_var + c.seed_var)) for c in ranked[1:]]
    _effects(results, ft, f, sign)
    _holm(f)
    for c in f.comparisons:
        d = c.diff
        c.verdict = ("SE unknown" if d.within_noise is None else "within noise" if d.within_noise
                     else "better" if sign * d.value > 0 else "worse")
    if ranked:
        f.best_set = [ranked[0].run] + [r for r, d in f.top if d.within_noise is not False]
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
                      "value": w.value, "se": w.se, "ci": w.ci, "params": row.params, "within_noise_of_best": f.best_set[1:],
                      "delta_vs_control": None if comp is None else comp.diff.value,
                      "delta_se": None if comp is None else comp.diff.se,
                      "within_noise": None if comp is None else comp.diff.within_noise,
                      "beats_control": None if comp is None else comp.verdict == "better"}
    f.selection = select(ft, task, results.validation_for.get(task), sign)
    f.answer = _answer(results, f, sign) + saturation(results, f, ft)
    return f


CEILING = 0.02  # a bounded [0, 1] metric within this of its best possible value is at the ceiling


def saturation(results: Results, f: TaskFindings, ft: list[Row]) -> list[str]:
    """Every run at the ceiling (or floor, for error rates) of a [0, 1] metric: the task cannot separate
    them. Says so, and points to the epoch where the runs differ most and to the validation loss."""
    if len(f.cells) < 2 or not stats.bounded_01(f.metric):
        return []
    best = 0.0 if f.lower_better else 1.0
    if not all(abs(c.value - best) <= CEILING + 1e-9 for c in f.cells.values()):
        return []
    line = (f"{f.task} is saturated at epoch_{f.epoch}: every run scores within {CEILING} of {best:g}, so it cannot "
            "tell them apart")
    spreads = []
    for e in evaluated_epochs(results, f.task):
        vals = [r.all_epochs[f.task].get(str(e)) for r in ft]
        if e != f.epoch and all(v is not None for v in vals):
            spreads.append((max(vals) - min(vals), e))
    if spreads and max(spreads)[0] > 0:
        spread, e = max(spreads)
        line += f"; at epoch_{e} they differ most (range {num(spread)}: see the per-epoch table)"
    losses = [(r.val_loss_by_epoch[max(r.val_loss_by_epoch)], r.run) for r in ft if r.val_loss_by_epoch]
    if len(losses) >= 2:
        (lo, lo_run), (hi, hi_run) = min(losses), max(losses)
        line += f"; final validation loss ranges from {num(lo)} ({lo_run}) to {num(hi)} ({hi_run})"
    return [line + "."]


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
                value, se, samples, seed_var = _mean(cells)
                means.append(LevelMean(p, format_param(lv), value, se, [c.run for c in cells], samples, seed_var))
        if len(means) < 2:
            continue
        # sorted, not max/min: on a tie max and min return the same level ("rank 4 -> 4")
        ordered = sorted(means, key=lambda m: sign * m.value)
        worst, best = ordered[0], ordered[-1]
        f.effects.append(MainEffect(p, means, best.level, worst.level,
                                    compare(best.value, best.se, best.samples, worst.value, worst.se, worst.samples,
                                            best.seed_var + worst.seed_var)))
    f.effects.sort(key=lambda e: -abs(e.effect.value))
    if len(params) >= 2:
        a, b = params[0], params[1]
        la, lb = (levels[a][0], levels[a][-1]), (levels[b][0], levels[b][-1])

        def cell(va, vb) -> Cell | None:
            hits = [f.cells[r.run] for r in rows if r.params[a] == va and r.params[b] == vb]
            if not hits:
                return None
            value, se, samples, seed_var = _mean(hits)  # more than one only when a third parameter varies too
            return Cell("", value, se, samples, seed_var=seed_var)

        corners = {(va, vb): cell(va, vb) for va in la for vb in lb}
        if all(c is not None for c in corners.values()):
            simple = [(format_param(vb), stats.difference(corners[(la[1], vb)].value, corners[(la[1], vb)].se,
                                                          corners[(la[0], vb)].value, corners[(la[0], vb)].se))
                      for vb in lb]
            inter = stats.Difference(simple[1][1].value - simple[0][1].value,
                                     stats.combined_se(*(c.se for c in corners.values())))
            if all(c.samples for c in corners.values()):
                # per item: (a1 - a0 at b1) - (a1 - a0 at b0), paired like any other comparison
                hi = {i: corners[(la[1], lb[1])].samples.get(i, math.nan) - corners[(la[0], lb[1])].samples.get(i, math.nan)
                      for i in corners[(la[1], lb[1])].samples}
                lo = {i: corners[(la[1], lb[0])].samples.get(i, math.nan) - corners[(la[0], lb[0])].samples.get(i, math.nan)
                      for i in corners[(la[1], lb[0])].samples}
                hi = {i: v for i, v in hi.items() if not math.isnan(v)}
                lo = {i: v for i, v in lo.items() if not math.isnan(v)}
                pair = significance.paired(hi, lo, binary=False)
                seed_var = sum(c.seed_var for c in corners.values())
                if pair is not None and math.isclose(pair.diff, inter.value, abs_tol=1e-9) and seed_var > 0:
                    se = math.sqrt((pair.se or 0.0) ** 2 + seed_var)
                    inter = stats.Difference(inter.value, se, "seed-aware z-test",
                                             significance.normal_two_sided(inter.value / se))
                elif pair is not None and math.isclose(pair.diff, inter.value, abs_tol=1e-9):
                    inter = stats.Difference(inter.value, pair.se, pair.test, pair.p)
            if inter.p is None and inter.se:
                inter = stats.Difference(inter.value, inter.se, "z-test", significance.normal_two_sided(inter.value / inter.se))
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
        line = f"Best run: **{f.best['run']}**, {metric} {num(f.best['value'])}"
        if f.best.get("ci"):
            line += f" (95% CI {ci_text(f.best['ci'])})"
        elif f.best["se"] is not None:
            line += f" (SE {f.best['se']:.3f})"
        if f.top:
            runner, d = f.top[0]
            line += f"; next {runner} {num(f.cells[runner].value)}, difference {diff_text(d)}"
        out.append(line + ".")
        if len(f.best_set) > 1:
            out.append(f"Within noise of the top (no clear winner among them): {', '.join(f.best_set)}.")
    out.extend(_selection_answer(f, metric))
    if f.effects:
        parts = []
        for e in f.effects:
            parts.append(f"{e.param} {e.worst_level} -> {e.best_level}: {diff_text(e.effect)}")
        if len(f.effects) >= 2:
            first, second = f.effects[0], f.effects[1]
            gap = stats.Difference(abs(first.effect.value) - abs(second.effect.value),
                                   stats.combined_se(first.effect.se, second.effect.se))
            if gap.within_noise is False and first.effect.within_noise is False:
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


def _selection_answer(f: TaskFindings, metric: str) -> list[str]:
    s = f.selection
    if s is None or (s.on == "test" and f.best is None):
        return []
    if s.on == "validation":
        interval = f" (95% CI {ci_text(s.ci)})" if s.ci else "" if s.se is None else f" (SE {s.se:.3f})"
        return [f"Selected on validation ({s.validation_task}): **{s.run}** at epoch_{s.epoch} "
                f"({metric} {num(s.validation_value)} on validation, best of {s.candidates} run x epoch results); "
                f"its test {metric} is {num(s.value)}{interval} - the number to report (the test set "
                "played no part in choosing it)."]
    if s.validation_task:
        return [f"No run has both a validation ({s.validation_task}) and a test result at one epoch: the best run "
                f"was chosen on the test set, so its score is optimistic."]
    return [f"The best run{' and epoch' if f.epoch is not None else ''} were chosen on the test set itself "
            f"(no validation split was evaluated for {f.task}), so the best score is optimistic; evaluate the "
            "task on the validation split as well (a second task row with Split validation) to select there."]


def _sort_key(v: object):
    return (0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v))
