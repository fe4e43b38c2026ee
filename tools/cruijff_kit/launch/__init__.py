"""launch-training: take any training repo from a command to a monitored run.

Layers, lowest first (a module imports only those above it in this list):
    state.py        run ids, the per-run state dir, metadata (atomic JSON)
    entry_points.py console scripts, Hydra, LightningCLI, configurators, wandb switches, flag forms
    detect.py       entry points, dependency files, framework, wandb use, argparse flags (AST)
    gpus.py         nvidia-smi parsing and ranking
    env.py          which environment runs the repo (never ck's own); plan, create, install, verify
    losses.py       loss values in a log: NaN / divergence
    wandb_inject.py framework shortcut or plain-loop insertion, .backup, diff, revert
    process.py      start (the run is its process group, under util/supervise.py) / status / logs / stop
    diagnose.py     failure classification from the log, wandb run and metrics
    cli.py          `ck launch …` argparse wiring (no torch / wandb imports)
"""
