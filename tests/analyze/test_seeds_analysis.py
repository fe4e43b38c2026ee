"""Seeds as replicates end to end: `ck design --seeds 3`, real inspect-ai logs of the tiny model,
`ck analyze`: configuration means over seeds with SEs that count seeds and items."""
import contextlib
import csv
import io
import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from cruijff_kit.cli import main

from .conftest import SEEDS_CORRECT, SEEDS_N


def _items(exp, run_dir):
    from inspect_ai.log import read_eval_log

    [path] = list((exp / run_dir / "eval" / "logs").glob("*.eval"))
    log = read_eval_log(str(path))
    return np.array([1.0 if s.scores["includes"].value == "C" else 0.0 for s in sorted(log.samples, key=lambda s: str(s.id))])


@pytest.mark.slow
def test_seeds_are_replicates_with_seed_and_item_standard_errors(seeded):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(["analyze", str(seeded), "--json"]) == 0
    data = json.loads(buf.getvalue())
    assert data["replicate"] == "seed"
    configs = {c["params"]["lora_rank"]: c for c in data["configurations"]}
    assert set(configs) == {8, 16} and all(len(c["seeds"]) == 3 for c in configs.values())

    dirs = {r["run"]: r["directory"] for r in data["rows"]}
    items = {rank: np.array([_items(seeded, dirs[run]) for run in configs[rank]["seeds"]]) for rank in configs}
    control = _items(seeded, "base")
    for rank, y in items.items():
        c = configs[rank]
        seed_means = y.mean(axis=1)
        assert sorted(seed_means * SEEDS_N) == sorted(SEEDS_CORRECT[rank])  # the design reached the logs
        assert c["all_epochs"]["capitalization"]["0"] == pytest.approx(seed_means.mean())
        expected = math.sqrt(sps.sem(y.mean(axis=0)) ** 2 + np.var(seed_means, ddof=1) / 3)
        assert c["all_epochs_se"]["capitalization"]["0"] == pytest.approx(expected)

    found = data["findings"]["capitalization"]
    comps = {c["run"]: c for c in found["comparisons"]}
    assert set(comps) == {configs[8]["run"], configs[16]["run"]}  # configurations, not seeds
    c16 = comps[configs[16]["run"]]
    d = items[16].mean(axis=0) - control
    assert c16["test"] == "seed-aware z-test"
    assert c16["delta"] == pytest.approx(d.mean())
    assert c16["delta_se"] == pytest.approx(math.sqrt(sps.sem(d) ** 2 + np.var(items[16].mean(axis=1), ddof=1) / 3))
    assert c16["p"] == pytest.approx(2 * sps.norm.sf(abs(d.mean()) / c16["delta_se"]))

    [effect] = found["main_effects"]
    per_item = items[16].mean(axis=0) - items[8].mean(axis=0)
    se = math.sqrt(sps.sem(per_item) ** 2 + sum(np.var(items[k].mean(axis=1), ddof=1) / 3 for k in (8, 16)))
    assert effect["param"] == "lora_rank" and effect["effect"]["value"] == pytest.approx(per_item.mean())
    assert effect["effect"]["se"] == pytest.approx(se)

    # per-seed rows in results.csv, each naming its configuration and seed
    with open(seeded / "analysis" / "results.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["type"] == "Fine-tuned"]
    assert len(rows) == 6
    assert {(r["configuration"], r["seed"]) for r in rows} == {
        (configs[k]["run"], str(s)) for k in (8, 16) for s in (1234, 1235, 1236)}
    report = (seeded / "analysis" / "report.md").read_text()
    assert "configurations over training seeds" in report and "SE² = SE_items² + s_seeds² / S" in report
    assert f"| {configs[8]['run']} | epoch_0 | 3 | 0.250, 0.375, 0.500 |" in report
    plot = next(p for p in data["plots"] if p["kind"] == "seed_spread")
    assert plot["series"] == 2 and plot["cells"] == 6  # 2 configurations, a point per seed
    assert next(p for p in data["plots"] if p["kind"] == "per_epoch")["series"] == 2  # a line per configuration
    assert "capitalization_seeds.png" in report
