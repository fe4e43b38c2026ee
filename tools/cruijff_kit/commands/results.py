"""`ck results [filters] [--json|--csv]`: every analysed result across experiments (the results store)."""
from __future__ import annotations

from ._common import emit_json

SHOWN = ("experiment", "run", "seed", "checkpoint", "task", "split", "metric", "value", "se", "n")


def register(sub) -> None:
    p = sub.add_parser("results", help="results of every analysed experiment (the results store)",
                       description="Query the results store that `ck analyze` writes into: one row per experiment x "
                                   "run x checkpoint x task x split x metric, with the settings each run trained with.")
    p.add_argument("--experiment", action="append", default=[], metavar="NAME|DIR", help="only these experiments")
    p.add_argument("--model", help="model name or checkpoint path")
    p.add_argument("--dataset", help="dataset path or sha256")
    p.add_argument("--task")
    p.add_argument("--split")
    p.add_argument("--metric", help="e.g. includes/accuracy")
    p.add_argument("--checkpoint", help="epoch_N or base")
    p.add_argument("--set", action="append", default=[], metavar="SETTING=VALUE",
                   help="only runs that trained with this value, e.g. 'LoRA rank=8' (repeatable)")
    p.add_argument("--store", metavar="FILE", help="the results store (default: $CK_RESULTS_STORE, claude.local.md's "
                                                   "results_store, else ~/.cache/cruijff_kit/results.sqlite)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true")
    out.add_argument("--csv", action="store_true", help="CSV on stdout (every column but the per-sample scores)")
    p.set_defaults(func=run)


def settings_filter(items: list[str]) -> dict:
    from ..errors import CkError
    from ..experiment.design import coerce
    from ..settings import lookup, suggest
    from .design import _split_pair

    out = {}
    for item in items:
        name, value = _split_pair(item, "--set")
        s = lookup(name)
        if s is None or not s.per_run:
            near = suggest(name)
            raise CkError(f"{name[:60]!r} is not a training setting", field="--set",
                          hint=f"did you mean {near!r}?" if near else None)
        out[s.key] = coerce(s, value, None, None, f"--set {name}")
    return out


def run(args) -> int:
    import csv
    import io
    from pathlib import Path

    from ..analyze.store import MAIN, Store, default_path
    from ..templating import render

    store = Store(Path(args.store).expanduser() if args.store else default_path())
    either = []
    if args.model:
        either.append((("model", "model_path"), args.model))
    if args.dataset:
        d = Path(args.dataset).expanduser()
        either.append((("dataset", "dataset_sha256"), str(d.resolve()) if d.exists() else args.dataset))
    where = {k: v for k, v in (("task", args.task), ("split", args.split), ("metric", args.metric),
                               ("checkpoint", args.checkpoint)) if v}
    rows = store.query(where, settings_filter(args.set), args.experiment or None, either)
    if args.json:
        emit_json({"store": str(store.path), "count": len(rows), "rows": rows})
        return 0
    if args.csv:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(MAIN), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        print(buf.getvalue(), end="")
        return 0
    cells = [["" if r[c] is None else f"{r[c]:.3f}" if isinstance(r[c], float) else str(r[c]) for c in SHOWN]
             for r in rows]
    header = list(SHOWN)
    widths = [max(len(x) for x in col) for col in zip(header, *cells)]
    print(render("analyze/table.txt.j2", title=f"{len(rows)} result(s) in {store.path}", header=header, cells=cells,
                 widths=widths, notes=[]), end="")
    return 0
