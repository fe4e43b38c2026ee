"""The project's one jinja2 environment: every generated file comes from templates/.

Strict (undefined names are errors), no HTML escaping, block tags eat their own line.
Filters:
  sh           shlex.quote: everything that reaches a shell
  yaml         one YAML value that reads back as the same Python value (PyYAML and OmegaConf)
  py           a Python literal for generated Python source
  na / cell    markdown table cells ('-' for not applicable; '|' escaped)
  extra_value  a run's value for an extra runs-table column
"""
from __future__ import annotations

import functools
import json
import shlex
from typing import Any

from . import templates_dir


def _na(value) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        from .util.numbers import format_float

        return format_float(value)
    return str(value)


def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _extra_value(extra, column: str) -> str:
    return dict(extra).get(column, "")


@functools.lru_cache(maxsize=1)
def environment():
    import jinja2

    from .util.yaml_text import yaml_value

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters.update(
        sh=lambda value: shlex.quote(str(value)),
        yaml=yaml_value,
        py=lambda value: json.dumps(value) if isinstance(value, str) else repr(value),
        na=_na,
        cell=_cell,
        extra_value=_extra_value,
    )
    return env


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)


def macros(name: str):
    """A template's macros as callables (one file holds related snippets)."""
    return environment().get_template(name).module
