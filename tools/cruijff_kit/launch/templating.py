"""The jinja2 environment for templates/launch/: generated shell and Python text comes from there."""
from __future__ import annotations

import functools
import json
import shlex

from .. import templates_dir


@functools.lru_cache(maxsize=1)
def environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["sh"] = lambda value: shlex.quote(str(value))
    # Python literals for values that land in generated Python source (double-quoted strings,
    # as the surrounding generated code uses).
    env.filters["py"] = lambda value: json.dumps(value) if isinstance(value, str) else repr(value)
    return env


def render(name: str, **context) -> str:
    return environment().get_template(name).render(**context)


def macros(name: str):
    """A template's macros as callables (one file holds the related snippets)."""
    return environment().get_template(name).module
