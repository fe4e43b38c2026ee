"""Experiment -> experiment_summary.md (jinja2; templates/experiment_summary.md.j2)."""
from __future__ import annotations

from functools import lru_cache

from .. import templates_dir
from .model import Experiment
from .numbers import format_float


def _na(value) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return format_float(value)
    return str(value)


def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _extra_value(extra, column: str) -> str:
    return dict(extra).get(column, "")


@lru_cache(maxsize=None)
def jinja_env():
    """The project's one jinja2 environment: strict, no HTML escaping, shell-quoting filter."""
    import shlex

    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update(na=_na, cell=_cell, extra_value=_extra_value, sh=lambda v: shlex.quote(str(v)))
    return env


def render_summary(exp: Experiment) -> str:
    extra_columns: list[str] = []
    for run in exp.runs:
        for key, _ in run.extra:
            if key not in extra_columns:
                extra_columns.append(key)
    text = jinja_env().get_template("experiment_summary.md.j2").render(exp=exp, extra_columns=extra_columns)
    return text.rstrip("\n") + "\n"
