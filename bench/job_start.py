"""What a job's start costs: CPU seconds of a process that loads what an evaluation job loads (torch,
transformers' modeling code, PEFT, inspect-ai and its command line) with the garbage collector as
Python leaves it vs under util/procs.imports_without_gc (collection off while loading, the loaded
objects frozen after). The training recipes, the TRL trainer and the eval launcher load their
libraries that way. Both programs end through exit_after, as the jobs do.
Goal: imports_without_gc <= 0.90 x the plain import (the collector measured ~1.4 of ~8 CPU-s).

Usage: .venv/bin/python bench/job_start.py [repeats]
"""
from __future__ import annotations

import statistics
import sys

from process_exit import cpu_seconds

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
    seconds: dict[str, list[float]] = {name: [] for name in PROGRAMS}
    for _ in range(repeats):  # alternated, so a noisy neighbour hits both alike
        for name, program in PROGRAMS.items():
            seconds[name].append(cpu_seconds(program))
    median = {name: statistics.median(v) for name, v in seconds.items()}
    for name, m in median.items():
        print(f"{name:18} median {m:.2f} CPU-s  ({', '.join(f'{s:.2f}' for s in seconds[name])})")
    ratio = median["imports_without_gc"] / median["plain import"]
    print(f"imports_without_gc / plain import = {ratio:.2f}  goal <= {GOAL}  {'met' if ratio <= GOAL else 'NOT met'}")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
