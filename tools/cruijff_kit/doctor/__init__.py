"""`ck doctor`: is this environment able to run an experiment? Each check says what is wrong and
the fix. checks.py holds the checks; they never import torch & co. (versions come from metadata)."""
from .checks import Check, run_checks

__all__ = ["Check", "run_checks"]
