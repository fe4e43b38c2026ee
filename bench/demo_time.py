"""Wall time of the bundled demo (`make demo` after the one-time install: tiny-model building
included), fresh, on this machine, and its held-out result.
Goal: <= 3 minutes on 2 cores. Prints seconds, CPU seconds of the demo and its jobs, the ratio to
the goal, and the results table's lines (runs evaluated on the held-out test words)."""
import os
import resource
import subprocess
import sys
import tempfile
import time

GOAL_S = 180.0


def main() -> int:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "cruijff_kit.demo", "--out", out, "--max-parallel", "2"],
                           env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
        dt = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode:
        print(r.stdout[-2000:], r.stderr[-2000:])
        return r.returncode
    table = r.stdout[r.stdout.find("=== 5. results ==="):].splitlines()[1:12]
    print("\n".join(table))
    print(f"demo: {dt:.1f} s wall, {usage.ru_utime + usage.ru_stime:.1f} s CPU (children waited for)  "
          f"goal <= {GOAL_S:.0f} s  ratio {dt / GOAL_S:.2f}  load average now {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
