"""Wall time of the bundled demo (`make demo` after the one-time install), fresh, on this machine.
Goal: <= 5 minutes on 2 cores. Prints seconds and the ratio to the goal."""
import os
import subprocess
import sys
import tempfile
import time

GOAL_S = 300.0


def main() -> int:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "cruijff_kit.demo", "--out", out, "--max-parallel", "2"],
                           env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
        dt = time.perf_counter() - t0
    if r.returncode:
        print(r.stdout[-2000:], r.stderr[-2000:])
        return r.returncode
    print(f"demo: {dt:.1f} s  goal <= {GOAL_S:.0f} s  ratio {dt / GOAL_S:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
