"""setup_finetune.yaml (a dict) -> finetune.slurm: plain bash with #SBATCH headers.

Which launcher runs the recipe:
  num_gpus <= 1, one node   python -m cruijff_kit.finetune.recipes.lora_single_device --config finetune.yaml
  N GPUs, one node          tune run --nproc_per_node N cruijff_kit/finetune/recipes/lora_distributed.py --config finetune.yaml
  M nodes x N GPUs, or      srun (one task per rank, RANK/LOCAL_RANK/WORLD_SIZE from SLURM_PROCID/
  num_cpu_ranks N > 1       SLURM_LOCALID/SLURM_NTASKS, MASTER_ADDR = first host of the job)
  on CPU                    python -m cruijff_kit.finetune.recipes.lora_distributed --config finetune.yaml
CPU ranks go through srun even on one node: each rank is then a SLURM task with its own
--cpus-per-task, where `tune run` would squeeze every rank into the one task's CPUs.
Pure Python: imported by the CLI at start-up.
"""
from __future__ import annotations

from cruijff_kit.errors import CkError
from cruijff_kit.executors.resources import Resources
from cruijff_kit.finetune.config import (DISTRIBUTED_RECIPE, SETUP_FILE, SINGLE_DEVICE_RECIPE, ranks_per_node,
                                         with_defaults)

ENVIRONMENT_KINDS = ("venv", "conda", "none")


def launch_mode(setup: dict) -> str:
    s = with_defaults(setup)
    if s["num_nodes"] > 1 or (s["num_gpus"] == 0 and s["num_cpu_ranks"] > 1):
        return "srun"
    return "node" if s["num_gpus"] > 1 else "single"


def _check_environment(env: dict | None) -> dict:
    env = env or {"kind": "none"}
    kind = env.get("kind")
    if kind not in ENVIRONMENT_KINDS:
        raise CkError(f"environment kind {kind!r} is not one of: {', '.join(ENVIRONMENT_KINDS)}",
                      file=SETUP_FILE, field="environment.kind")
    needed = {"venv": "path", "conda": "name"}.get(kind)
    if needed and not env.get(needed):
        raise CkError(f"a {kind} environment needs its {needed}", file=SETUP_FILE, field=f"environment.{needed}")
    return env


def finetune_resources(setup: dict) -> Resources:
    """What finetune.slurm asks the scheduler for: the setup's `slurm` mapping, with the nodes,
    GPUs and tasks per node the launcher will use (whatever claude.local.md's defaults say)."""
    s = with_defaults(setup)
    mode = launch_mode(s)
    slurm = dict(s.get("slurm") or {})
    if mode != "single":
        slurm.update(nodes=s["num_nodes"], gpus=s["num_gpus"])
    elif s["num_gpus"] == 1:
        slurm["gpus"] = 1
    return Resources.from_slurm(slurm, tasks_per_node=ranks_per_node(s) if mode == "srun" else None,
                                file=SETUP_FILE)


def render_finetune_slurm(setup: dict, resources: Resources | None = None) -> str:
    from cruijff_kit.templating import render

    s = with_defaults(setup)
    s["environment"] = _check_environment(s.get("environment"))
    s["slurm"] = s.get("slurm") or {}
    mode = launch_mode(s)
    return render(
        "finetune.slurm.j2",
        setup=s,
        resources=resources or finetune_resources(s),
        launch=mode,
        nproc=ranks_per_node(s),
        nodes=s["num_nodes"],
        single_device_recipe=SINGLE_DEVICE_RECIPE,
        distributed_recipe=DISTRIBUTED_RECIPE,
        # tune run turns a relative recipe path into a module name, so this works from any directory.
        distributed_recipe_path=DISTRIBUTED_RECIPE.replace(".", "/") + ".py",
        trl_recipe="cruijff_kit.finetune.trl_train" if s.get("trainer") == "trl" else None,
    )
