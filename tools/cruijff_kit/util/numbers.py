"""Number formatting that round-trips and reads like a person wrote it (1e-5, not 1e-05)."""
from __future__ import annotations

import math


def format_float(value: float) -> str:
    """Shortest text that parses back to exactly `value`: 1e-05 -> '1e-5', 0.0003 -> '3e-4'."""
    if value == 0 or not math.isfinite(value):
        return repr(value)
    text = repr(value)
    if "e" in text:
        mant, exp = text.split("e")
        return f"{mant}e{int(exp)}"
    # small decimals read better in scientific notation (learning rates)
    if abs(value) < 1e-3:
        sci = f"{value:e}"
        mant, exp = sci.split("e")
        mant = mant.rstrip("0").rstrip(".")
        candidate = f"{mant}e{int(exp)}"
        if float(candidate) == value:
            return candidate
    return text
