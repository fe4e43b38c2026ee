"""`python -m cruijff_kit ...` == `ck ...` (the detached run supervisor starts this way)."""
from .cli import run

run()
