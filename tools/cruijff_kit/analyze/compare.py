"""`ck compare EXP_A EXP_B`: matching configurations of two analysed experiments side by side.

Rows of the results store match when they share model, dataset (sha256), task, split, metric,
checkpoint and every setting the runs trained with except Seed (seeds are replicates: averaged).
One run on each side scored on the same items: a paired test (significance.paired); otherwise a
z-test on the two SEs. The p-values of all matched pairs are Holm-corrected together.
"""
from __future__ import annotations

import json

from ..errors import CkError
from . import significance, stats
from .store import Store


def _key(row: dict) -> tuple:
    settings = {k: v for k, v in json.loads(row["settings"] or "{}").items() if k != "seed"}
    return (row["model_path"], row["dataset_sha256"], row["task"], row["split"], row["metric"], row["checkpoint"],
            json.dumps(settings, sort_keys=True))


def _side(rows: list[dict]) -> dict:
    values = [r["value"] for r in rows if r["value"] is not None]
    value = sum(values) / len(values) if values else None
    ses = [r["se"] for r in rows]
    item_se = stats.combined_se(*ses)
    se = (None if item_se is None else significance.seed_item_se(values, item_se / len(rows))) if values else None
    return {"runs": [r["run"] for r in rows], "value": value, "se": se,
            "samples": json.loads(rows[0]["samples"]) if len(rows) == 1 and rows[0]["samples"] else {}}


def compare_experiments(store: Store, a: str, b: str) -> dict:
    sides = {}
    for name in (a, b):
        rows = store.query(experiments=[name], samples=True)
        if not rows:
            raise CkError(f"no results of experiment {name!r} in the results store", file=store.path,
                          field="ck compare", hint="`ck analyze DIR` writes them; `ck results` lists what is there")
        if len({r["experiment_id"] for r in rows}) > 1:
            raise CkError(f"{name!r} names more than one experiment in the results store", file=store.path,
                          field="ck compare", hint="give the experiment's directory instead of its name")
        grouped: dict[tuple, list[dict]] = {}
        for r in rows:
            if r["run_type"] != "Control":
                grouped.setdefault(_key(r), []).append(r)
            else:  # controls match controls: the base model has no training settings
                grouped.setdefault(_key({**r, "settings": '{"control": true}'}), []).append(r)
        sides[name] = (rows[0]["experiment"], grouped)
    (name_a, ga), (name_b, gb) = sides[a], sides[b]
    matched = []
    for key in [k for k in ga if k in gb]:
        sa, sb = _side(ga[key]), _side(gb[key])
        if sa["value"] is None or sb["value"] is None:
            continue
        d = stats.difference(sa["value"], sa["se"], sb["value"], sb["se"])
        pair = significance.paired(sa["samples"], sb["samples"]) if sa["samples"] and sb["samples"] else None
        if pair is not None:
            diff = stats.Difference(d.value, pair.se, pair.test, pair.p)
            n = pair.n
        else:
            diff = stats.Difference(d.value, d.se, "z-test" if d.se else "",
                                    significance.normal_two_sided(d.value / d.se) if d.se else None)
            n = None
        settings = json.loads(key[6])
        matched.append({"task": key[2], "split": key[3], "metric": key[4], "checkpoint": key[5],
                        "settings": settings, "runs_a": sa["runs"], "runs_b": sb["runs"],
                        "value_a": sa["value"], "se_a": sa["se"], "value_b": sb["value"], "se_b": sb["se"],
                        "paired_items": n, "diff": diff})
    tested = [m["diff"] for m in matched if m["diff"].p is not None]
    for d, adj in zip(tested, significance.holm([d.p for d in tested])):
        d.p_holm = adj
    for m in matched:
        d = m.pop("diff")
        m.update({"diff": d.value, "diff_se": d.se, "test": d.test, "p": d.p, "p_holm": d.p_holm,
                  "within_noise": d.within_noise})
    return {"a": name_a, "b": name_b, "store": str(store.path), "matched": matched,
            "only_a": len([k for k in ga if k not in gb]), "only_b": len([k for k in gb if k not in ga])}
