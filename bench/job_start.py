"""What a job's start costs: CPU seconds of a process that loads what an evaluation job loads (torch,
transformers' modeling code, PEFT, inspect-ai and its command line) with the garbage collector as
Python leaves it vs under util/procs.imports_without_gc (collection off while loading, the loaded
objects frozen after). The training recipes, the TRL trainer and the eval launcher load their
libraries that way. Both programs end through exit_after, as the jobs do.
Goal: imports_without_gc <= 0.90 x the plain import (the collector measured ~1.4 of ~8 CPU-s).

Usage: .venv/bin/python bench/job_start.py [repeats]
"""
from __future__ import annotations

import sys

from cpu_compare import compare

GOAL = 0.90
LOAD = "import torch, transformers.modeling_utils, peft, inspect_ai._cli.main"
END = "from cruijff_kit.util.procs import exit_after\nexit_after(lambda: 0)"
PROGRAMS = {
    "plain import": f"{LOAD}\n{END}",
    "imports_without_gc": f"from cruijff_kit.util.procs import imports_without_gc\n"
                          f"with imports_without_gc():\n    {LOAD}\n{END}",
}


def main() -> int:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    return compare(PROGRAMS, "imports_without_gc", "plain import", GOAL, repeats)


if __name__ == "__main__":
    sys.exit(main())
