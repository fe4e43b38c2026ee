"""Templates for launch-training (templates/launch/): the project's shared jinja2 environment."""
from __future__ import annotations

from ..templating import environment, macros, render  # noqa: F401
