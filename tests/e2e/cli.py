"""`ck` as the user runs it (a subprocess), for the end-to-end tests."""
import os
import subprocess
import sys


def run_ck(*args, env=None, check=True, timeout=900):
    r = subprocess.run([sys.executable, "-m", "cruijff_kit", *map(str, args)], capture_output=True, text=True,
                       env={**os.environ, **(env or {})}, timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"ck {' '.join(map(str, args))} -> {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r
