"""Kept for callers of experiment.numbers; the formatting lives in util/numbers.py (a lower layer,
so templating.py can use it without importing the experiment package)."""
from ..util.numbers import format_float  # noqa: F401
