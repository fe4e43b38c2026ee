"""launch-training: take any training repo from a command to a monitored run.

A subpackage of its own: it imports only the shared toolkit (util/, errors.py, templating.py), never
the experiment pipeline, and only the `ck` entry point imports it (tests/launch/test_launch_import_rule.py).

Layers, lowest first (a module imports only those above it in this list):
    state.py        run ids, the per-run state dir, metadata (atomic JSON, checked on read)
    entry_points.py console scripts (uv workspace members too), Hydra, LightningCLI, configurators,
                    wandb switches, flag forms
    readme.py       the README's own commands (code blocks, prompts), resolved to what they run
    layout.py       one project or a monorepo of sub-projects
    cli_flags.py    tyro / click / typer flags, subcommands of dispatching CLIs (AST)
    detect.py       entry points, dependency files, framework, wandb use, flags (AST), confidence
    gpus.py         nvidia-smi parsing and ranking
    env.py          which environment runs the repo (never ck's own); plan, create, install, verify
    losses.py       loss values in a log: NaN / divergence
    wandb_inject.py framework shortcut or plain-loop insertion, .backup, diff, revert
    failures.py     the catalogue: what a log's error line says (category, flag, package, service, key, symbol)
    process.py      start (the run is its process group, under util/supervise.py) / status / logs / stop
    diagnose.py     failure classification from the log, advice, wandb run and metrics
    cli.py          `ck launch …` argparse wiring (no torch / wandb imports)
"""
