"""Experiment -> experiment_summary.md (jinja2; templates/experiment_summary.md.j2)."""
from __future__ import annotations

from ..templating import render
from .model import Experiment


def render_summary(exp: Experiment) -> str:
    extra_columns: list[str] = []
    for run in exp.runs:
        for key, _ in run.extra:
            if key not in extra_columns:
                extra_columns.append(key)
    text = render("experiment_summary.md.j2", exp=exp, extra_columns=extra_columns)
    return text.rstrip("\n") + "\n"
