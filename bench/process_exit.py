"""What a job's exit costs: CPU seconds of a process that loads what an evaluation job loads (torch,
transformers' modeling code, PEFT, inspect-ai) and ends, with the interpreter's normal exit vs
util/procs.exit_after (atexit handlers and flushes, no module teardown). Every training and
evaluation job and every `ck` command ends through exit_after.
Goal: exit_after <= 0.85 x the normal exit (the teardown measured ~2 of ~8 CPU-s).

Usage: .venv/bin/python bench/process_exit.py [repeats]
"""
from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys

GOAL = 0.85
LOAD = "import torch, transformers.modeling_utils, peft, inspect_ai"
PROGRAMS = {
    "normal exit": f"{LOAD}\nraise SystemExit(0)",
    "exit_after": f"{LOAD}\nfrom cruijff_kit.util.procs import exit_after\nexit_after(lambda: 0)",
}


def cpu_seconds(program: str) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", program], check=True, capture_output=True,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    seconds: dict[str, list[float]] = {name: [] for name in PROGRAMS}
    for _ in range(repeats):  # alternated, so a noisy neighbour hits both alike
        for name, program in PROGRAMS.items():
            seconds[name].append(cpu_seconds(program))
    median = {name: statistics.median(v) for name, v in seconds.items()}
    for name, m in median.items():
        print(f"{name:12} median {m:.2f} CPU-s  ({', '.join(f'{s:.2f}' for s in seconds[name])})")
    ratio = median["exit_after"] / median["normal exit"]
    print(f"exit_after / normal exit = {ratio:.2f}  goal <= {GOAL}  {'met' if ratio <= GOAL else 'NOT met'}")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
