"""`ck inspect ARGS...`: inspect-ai's own CLI from the environment that runs ck.

An installed plugin puts only `ck` on the agent's PATH (its bin/); its environment lives in the
plugin's data directory. `ck inspect eval ...` / `ck inspect log dump FILE.eval` reach the matching
`inspect` without a second PATH entry. cli.main hands everything after `inspect` over untouched,
so inspect's own options (--log-dir, --max-tokens, --version) are never parsed by ck."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..errors import CkError


def register(sub) -> None:
    p = sub.add_parser("inspect", help="inspect-ai's CLI from ck's environment (`ck inspect log dump FILE`)",
                       description="Runs inspect-ai's `inspect` from the environment that runs ck: "
                                   "`ck inspect eval TASK.py --model hf/DIR --limit 5`, "
                                   "`ck inspect log dump FILE.eval`.")
    p.add_argument("inspect_args", nargs="*", metavar="ARGS", help="arguments for inspect")
    p.set_defaults(func=run)


def executable() -> Path:
    exe = Path(sys.executable).parent / "inspect"
    if exe.exists():
        return exe
    found = shutil.which("inspect")
    if not found:
        raise CkError("inspect-ai is not installed in ck's environment", field="inspect",
                      hint="`ck setup` installs the ML stack (or: pip install inspect-ai)")
    return Path(found)


def run(args) -> int:
    exe = executable()
    sys.stdout.flush()
    os.execv(str(exe), [str(exe), *args.inspect_args])
    return 0  # not reached
