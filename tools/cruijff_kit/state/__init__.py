"""What disk says, read in one place: the state layer.

Every reader of what ck and its jobs leave on disk lives here, typed: the on-disk names
(layout), user-written YAML (one bounded loader), the job ledger and experiment identity,
checkpoints and evaluation logs (artifacts), loss logs, measured resources, and the jobs an
experiment's run directories hold (jobs). `run/` and `analyze/` read through it and never import
each other; `experiment/` (the plan model) may read it; it imports nothing above util/,
errors and the executor vocabulary (executors/core).
"""
