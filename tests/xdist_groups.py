"""Units of work for `pytest -n 3 --dist loadgroup` (Makefile: `make test`).

Each test gets one xdist_group mark; pytest-xdist runs a group's tests on one worker, in order, and
hands the groups out in collection order (tests/conftest.py turns xdist's reordering off). So:

- the SLURM tests are one group: one cluster, one worker;
- a module that asks for a heavy shared fixture joins that fixture's group, so the fixture is built
  by one worker and read there, while the other worker runs everything else (build_once would make
  the second worker wait for the first one's build);
- a folder whose conftest builds heavy session fixtures is one group; any other module is its own;
- the groups are sorted by their expected time, longest first (the classic longest-processing-time
  rule): the agent scenario starts at once on one worker and the many short groups fill the other.
"""
from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path

import pytest

SLURM = "slurm"
# fixture -> the group of every module that asks for it (their fixtures are built once, there)
FIXTURE_GROUPS = {
    "finished_experiment": "finished-experiment",
    "mutable_experiment": "finished-experiment",
    "demo_experiment": "demo",
}
# folders whose conftest builds heavy session fixtures (finished evaluations, format-faithful
# checkpoints): one group each
SHARED_FIXTURE_FOLDERS = {"analyze", "families", "trl"}
# expected seconds per group with three workers busy on a 2-core machine (a fresh-clone CI of
# 2026-12-07 at -n 3, on a machine about twice as slow as the one before it, less what the merges
# of that day took out): the long groups; any other group is estimated from its tests (SLOW_TEST_S
# per test marked slow, FAST_TEST_S per other test). Only the order matters.
EXPECTED_S = {
    SLURM: 700,
    "trl": 600,
    "families": 540,
    "plugin/test_agent_scenario.py": 500,
    "finished-experiment": 285,
    "demo": 215,
    "e2e/test_search.py": 200,
    "finetune/test_stop_resume.py": 190,
    "test_skill_walkthrough.py": 160,
    "finetune/test_recipes.py": 130,
    "evaluate/test_launch_tasks.py": 125,
    "plugin/test_installed_package.py": 110,
    "launch/test_launch_wandb.py": 100,
    "analyze": 90,
    "e2e/test_eval_only_design.py": 75,
    "run/test_search_step.py": 70,
    "launch/test_launch_damaged_state.py": 65,
    "launch/test_launch_repo_shapes.py": 40,
}
SLOW_TEST_S = 8.0
FAST_TEST_S = 0.6


def _group_of_module(items: list, root: Path) -> str:
    fixtures = {name for item in items for name in getattr(item, "fixturenames", ())}
    for name, group in FIXTURE_GROUPS.items():
        if name in fixtures:
            return group
    rel = Path(str(items[0].path)).relative_to(root)
    return rel.parts[0] if rel.parts[0] in SHARED_FIXTURE_FOLDERS else str(rel)


def _suffix_group(item, group: str) -> None:
    """pytest-xdist's worker tells its loadgroup scheduler a test's group by the suffix of the test's
    id (`path::test[params]@group`), which 3.8 writes into `item._nodeid`. pytest 9.2 derives the id
    from a structured `item._id` instead, so that write changes nothing and every test became its
    own group (pytest-xdist issue #1386, fix not released): the suffix is written into the id's
    string here. Its fields (path, names, params) stay as they are."""
    old = getattr(item, "_id", None)
    if old is None or not dataclasses.is_dataclass(old) or str(old).endswith(f"@{group}"):
        return  # an older pytest: xdist's own hook adds the suffix
    new = dataclasses.replace(old)
    object.__setattr__(new, "_str_cache", f"{old}@{group}")
    item._id = new


def assign_groups(config, items: list, root: Path) -> None:
    """Mark every test with its group and sort `items` so that groups are contiguous, longest
    first; within a group the collection order (module fixtures stay built once) is kept."""
    loadgroup_worker = bool(config.getvalue("loadgroup")) if hasattr(config.option, "loadgroup") else False
    by_module: dict[Path, list] = defaultdict(list)
    for item in items:
        by_module[Path(str(item.path))].append(item)
    module_group = {path: _group_of_module(its, root) for path, its in by_module.items()}
    group_of: dict[int, str] = {}
    for item in items:
        marked = item.get_closest_marker("xdist_group")
        if marked:
            group_of[id(item)] = str(marked.args[0] if marked.args else marked.kwargs.get("name", "default"))
            continue
        if "slurm_cluster" in getattr(item, "fixturenames", ()) or item.get_closest_marker("slurm"):
            group = SLURM
        else:
            group = module_group[Path(str(item.path))]
        group_of[id(item)] = group
        item.add_marker(pytest.mark.xdist_group(group))
    if loadgroup_worker:
        for item in items:
            _suffix_group(item, group_of[id(item)])
    estimate: dict[str, float] = defaultdict(float)
    first_seen: dict[str, int] = {}
    for i, item in enumerate(items):
        group = group_of[id(item)]
        first_seen.setdefault(group, i)
        estimate[group] += SLOW_TEST_S if item.get_closest_marker("slow") else FAST_TEST_S
    for group, seconds in EXPECTED_S.items():
        if group in estimate:
            estimate[group] = seconds
    position = {id(item): i for i, item in enumerate(items)}
    items.sort(key=lambda it: (-estimate[group_of[id(it)]], first_seen[group_of[id(it)]], position[id(it)]))
