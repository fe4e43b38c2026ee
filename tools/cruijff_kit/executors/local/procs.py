"""Process identity and liveness for the local executor: the process toolkit (util/procs.py)."""
from __future__ import annotations

from ...util.procs import has_env, is_alive, kill_group, start_time  # noqa: F401
