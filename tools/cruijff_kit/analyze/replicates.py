"""Training seeds as replicates: one configuration row per set of runs that differ only in Seed.

When the plan states `Seeds N` (N > 1; `ck design --seeds N`), every configuration was trained
once per seed. A configuration's value at an epoch is the mean over its seeds; its SE counts both
the spread between seeds and the test items' sampling noise (significance.seed_item_se):
    SE^2 = SE_items^2 + s_seeds^2 / S
with SE_items the SE over items of the per-item score averaged over the seeds (when every seed
was scored on the same items; else sqrt(sum of the seeds' SEs^2) / S) and s_seeds the sd of the
S per-seed values. `seed_var` (= s_seeds^2 / S) travels with the row so that differences between
configurations add the seed variance of both sides to their paired item SE. Only epochs every
seed has a result at are aggregated; a configuration with a seed missing there is left out of
that epoch rather than averaged over fewer seeds silently.
"""
from __future__ import annotations

import math

from . import significance, stats
from .results import Results, Row


def _label(names: list[str], seeds: list[object]) -> str:
    """The run names without their seed part: tiny_rank8_seed1234, tiny_rank8_seed1235 -> tiny_rank8."""
    drop = {f"seed{s}" for s in seeds}
    parts = [p for p in names[0].split("_") if p not in drop]
    return "_".join(parts) or names[0]


def configurations(res: Results) -> list[Row]:
    groups: dict[tuple, list[Row]] = {}
    for r in res.rows:
        if r.trained:
            key = (r.model, tuple((p, v) for p, v in r.params.items() if p != "seed"))
            groups.setdefault(key, []).append(r)
    out = []
    for (model, params), members in groups.items():
        seeds = [m.params.get("seed") for m in members]
        row = Row(run=_label([m.run for m in members], seeds), directory=_label([m.directory for m in members], seeds),
                  type=members[0].type, model=model, params=dict(params))
        row.seeds = [m.run for m in members]
        losses = [m.final_train_loss for m in members if m.final_train_loss is not None]
        row.final_train_loss = sum(losses) / len(losses) if len(losses) == len(members) else None
        for task in res.tasks:
            _aggregate(row, members, task)
        out.append(row)
    return out


def _aggregate(row: Row, members: list[Row], task: str) -> None:
    keys = None
    for m in members:
        have = {k for k, v in m.all_epochs.get(task, {}).items() if v is not None}
        keys = have if keys is None else keys & have
    row.all_epochs[task], row.all_epochs_se[task], row.all_samples[task] = {}, {}, {}
    row.all_epochs_seed_var[task], row.seed_values[task] = {}, {}
    for k in sorted(keys or (), key=lambda k: (k == "base", int(k) if k.isdigit() else 0)):
        vals = [m.all_epochs[task][k] for m in members]
        value = sum(vals) / len(vals)
        per_seed = [m.all_samples.get(task, {}).get(k, {}) for m in members]
        avg = significance.average_items(per_seed) if all(per_seed) else {}
        if avg and math.isclose(significance.mean(list(avg.values())), value, abs_tol=1e-9):
            item_se = significance.sem(list(avg.values()))
        else:
            avg = {}
            se = stats.combined_se(*(m.all_epochs_se.get(task, {}).get(k) for m in members))
            item_se = None if se is None else se / len(members)
        between = significance.sem(vals)
        row.all_epochs[task][k] = value
        row.all_epochs_se[task][k] = significance.seed_item_se(vals, item_se)
        row.all_samples[task][k] = avg
        row.all_epochs_seed_var[task][k] = 0.0 if between is None else between ** 2
        row.seed_values[task][k] = vals
    if row.all_epochs[task]:
        last = list(row.all_epochs[task])[-1]
        row.metrics[task], row.se[task] = row.all_epochs[task][last], row.all_epochs_se[task][last]
        row.epochs[task] = int(last) if last.isdigit() else None
        row.metric_names[task] = members[0].metric_names.get(task, "")
    else:
        row.metrics[task] = row.se[task] = None
