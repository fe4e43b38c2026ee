"""What a job's exit costs: CPU seconds of a process that loads what an evaluation job loads (torch,
transformers' modeling code, PEFT, inspect-ai) and ends, with the interpreter's normal exit vs
util/procs.exit_after (atexit handlers and flushes, no module teardown). Every training and
evaluation job and every `ck` command ends through exit_after.
Goal: exit_after <= 0.85 x the normal exit (the teardown measured ~2 of ~8 CPU-s).

Usage: .venv/bin/python bench/process_exit.py [repeats]
"""
from __future__ import annotations

import sys

from cpu_compare import compare

GOAL = 0.85
LOAD = "import torch, transformers.modeling_utils, peft, inspect_ai"
PROGRAMS = {
    "normal exit": f"{LOAD}\nraise SystemExit(0)",
    "exit_after": f"{LOAD}\nfrom cruijff_kit.util.procs import exit_after\nexit_after(lambda: 0)",
}


def main() -> int:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    return compare(PROGRAMS, "exit_after", "normal exit", GOAL, repeats)


if __name__ == "__main__":
    sys.exit(main())
