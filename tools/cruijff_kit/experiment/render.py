"""Experiment -> experiment_summary.md (jinja2; templates/experiment_summary.md.j2)."""
from __future__ import annotations

from ..templating import render
from .model import Experiment
from .search import section_bullets, space_rows
from ..settings import EVALUATION, OUTPUT, PLAN_SETTINGS, RUN_SETTINGS, TRAINING


# the seeds' Configuration lines come first, in their order; the rest follow the schema's order
FIRST = ("epochs", "num_gpus", "batch_size", "system_prompt", "enable_validation")


def render_summary(exp: Experiment) -> str:
    extra_columns: list[str] = []
    for run in exp.runs:
        for key, _ in run.extra:
            if key not in extra_columns:
                extra_columns.append(key)
    used = {k for run in exp.runs for k, _ in run.settings}
    run_columns = [s for s in RUN_SETTINGS if s.key in used]
    stated = dict(exp.settings)
    ordered = sorted(PLAN_SETTINGS, key=lambda s: FIRST.index(s.key) if s.key in FIRST else len(FIRST))
    config = {g: [(s, stated[s.key]) for s in ordered if s.group == g and s.key in stated]
              for g in (TRAINING, EVALUATION, OUTPUT)}
    evs = exp.evaluations
    # every task's split is shown (a task without its own evaluates the Configuration's split)
    eval_columns = [c for c, used in (("Split", bool(evs)),
                                      ("System prompt", any(e.system_prompt is not None for e in evs)),
                                      ("Runs", any(e.runs for e in evs)),
                                      ("Dataset", any(e.dataset for e in evs)),
                                      ("Description", any(e.description for e in evs))) if used]
    text = render("experiment_summary.md.j2", exp=exp, extra_columns=extra_columns, run_columns=run_columns,
                  config=config, eval_columns=eval_columns, quoted=_quoted,
                  split=_split, trial_column=any(r.trial is not None for r in exp.runs),
                  search_bullets=section_bullets(exp.search) if exp.search else (),
                  search_space=space_rows(exp.search) if exp.search else ())
    return text.rstrip("\n") + "\n"


def _quoted(value: str | None) -> str:
    import json

    return "-" if value is None else json.dumps(value, ensure_ascii=False)


def _split(value: str | None) -> str:
    """A split name; one that reads as 'not applicable' ("none", "na") is quoted."""
    from .parse import NOT_APPLICABLE

    return "-" if value is None else _quoted(value) if value.lower() in NOT_APPLICABLE else value
