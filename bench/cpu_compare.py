"""CPU seconds of short Python programs, run alternately and compared by their medians: what
bench/process_exit.py and bench/job_start.py measure with (a noisy neighbour hits both alike)."""
from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys


def cpu_seconds(program: str) -> float:
    """User + system CPU of `python -c program` (one thread for torch's kernels)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", program], check=True, capture_output=True,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def compare(programs: dict[str, str], new: str, old: str, goal: float, repeats: int) -> int:
    """Print each program's median CPU and new / old against the goal; 0 when the goal is met."""
    seconds: dict[str, list[float]] = {name: [] for name in programs}
    for _ in range(repeats):  # alternated
        for name, program in programs.items():
            seconds[name].append(cpu_seconds(program))
    median = {name: statistics.median(v) for name, v in seconds.items()}
    width = max(map(len, programs))
    for name, m in median.items():
        print(f"{name:{width}} median {m:.2f} CPU-s  ({', '.join(f'{s:.2f}' for s in seconds[name])})")
    ratio = median[new] / median[old]
    print(f"{new} / {old} = {ratio:.2f}  goal <= {goal}  {'met' if ratio <= goal else 'NOT met'}")
    return 0 if ratio <= goal else 1
