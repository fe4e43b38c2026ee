"""`python -m cruijff_kit ...` == `ck ...` (the detached run supervisor starts this way)."""
import sys

from .cli import main

sys.exit(main())
