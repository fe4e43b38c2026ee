"""The results store (cruijff_kit/analyze/store.py): insert and query time at scale.
100 experiments x 1,000 rows written as `ck analyze` writes them (one transaction per experiment,
with per-sample scores of 100 items), then filtered queries over the 100,000 rows.
Goals: <= 0.5 s added per analysed experiment; a filtered query <= 0.2 s. Prints each with its
ratio to the goal."""
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cruijff_kit.analyze.store import COLUMNS, Store

EXPERIMENTS, ROWS = 100, 1000
INSERT_GOAL_S, QUERY_GOAL_S = 0.5, 0.2


def rows_for(i: int, rng: random.Random) -> list[dict]:
    out = []
    samples = json.dumps({f"s{k}": float(rng.random() < 0.6) for k in range(100)})
    for j in range(ROWS):
        run, task, epoch = j // 20, f"task{j % 5}", (j // 5) % 4
        r = {c: None for c in COLUMNS}
        r.update(experiment_id=f"id{i}", experiment=f"exp{i}", experiment_dir=f"/x/exp{i}", run=f"run{run}",
                 directory=f"run{run}", run_type="Fine-tuned", configuration=f"run{run}", seed=1234 + run % 3,
                 checkpoint=f"epoch_{epoch}", epoch=epoch, task=task, split="test", metric="m/accuracy",
                 value=rng.random(), se=0.05, n=100, model=f"model{i % 4}", model_path=f"/models/m{i % 4}",
                 dataset="/d.json", dataset_sha256=f"{i % 7:064x}", trainer="torchtune", ck_version="0.1.0",
                 settings=json.dumps({"lora_rank": 2 ** (run % 5 + 2), "learning_rate": 1e-4, "seed": 1234}),
                 samples=samples, log=f"/x/exp{i}/run{run}/eval/logs/l.eval", analyzed_at="t1")
        out.append(r)
    return out


def main() -> int:
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "results.sqlite")
        inserts = []
        for i in range(EXPERIMENTS):
            rows = rows_for(i, rng)
            t0 = time.perf_counter()
            store.replace_experiment(f"id{i}", rows)
            inserts.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        store.replace_experiment("id0", rows_for(0, rng))  # a re-analysis: upsert, no duplicates
        reanalyse = time.perf_counter() - t0
        queries = {
            "task + split + metric": dict(where={"task": "task3", "split": "test", "metric": "m/accuracy"}),
            "model + checkpoint": dict(either=[(("model", "model_path"), "model2")], where={"checkpoint": "epoch_3"}),
            "setting lora_rank=16": dict(settings={"lora_rank": 16}, where={"task": "task1"}),
            "one experiment": dict(experiments=["exp42"]),
        }
        timings = {}
        for name, q in queries.items():
            runs = []
            for _ in range(3):
                t0 = time.perf_counter()
                n = len(store.query(**q))
                runs.append(time.perf_counter() - t0)
            timings[name] = (min(runs), n)
        total = len(store.query(experiments=None, where={"split": "test"}))
    med, worst = statistics.median(inserts), max(inserts)
    print(f"rows: {total} ({EXPERIMENTS} experiments x {ROWS})")
    print(f"insert per experiment: median {med:.3f} s, max {worst:.3f} s  goal <= {INSERT_GOAL_S} s  "
          f"ratio {worst / INSERT_GOAL_S:.2f}; re-analysis (upsert) {reanalyse:.3f} s")
    for name, (t, n) in timings.items():
        print(f"query {name}: {t:.3f} s, {n} rows  goal <= {QUERY_GOAL_S} s  ratio {t / QUERY_GOAL_S:.2f}")
    ok = worst <= INSERT_GOAL_S and all(t <= QUERY_GOAL_S for t, _ in timings.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
