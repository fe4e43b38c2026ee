"""`ck compare EXP_A EXP_B [--json]`: matching configurations of two analysed experiments side by side."""
from __future__ import annotations

from ._common import emit_json


def register(sub) -> None:
    p = sub.add_parser("compare", help="two analysed experiments side by side (the results store)",
                       description="Configurations both experiments ran (same model, dataset sha256, task, split, "
                                   "metric, checkpoint and training settings but the seed), side by side: paired "
                                   "per item where the items match, Holm-corrected.")
    p.add_argument("a", metavar="EXP_A", help="experiment name or directory")
    p.add_argument("b", metavar="EXP_B", help="experiment name or directory")
    p.add_argument("--store", metavar="FILE", help="the results store (default as `ck results`)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def _f(v, signed=False) -> str:
    return "-" if v is None else f"{v:+.3f}" if signed else f"{v:.3f}"


def run(args) -> int:
    from pathlib import Path

    from ..analyze.compare import compare_experiments
    from ..analyze.store import Store, default_path
    from ..templating import render

    store = Store(Path(args.store).expanduser() if args.store else default_path())
    out = compare_experiments(store, args.a, args.b)
    if args.json:
        emit_json(out)
        return 0
    header = ["task", "checkpoint", "settings", f"A {out['a']}", f"B {out['b']}", "A - B", "test", "p", "Holm p", ""]
    cells = []
    for m in out["matched"]:
        settings = ", ".join(f"{k}={v}" for k, v in m["settings"].items() if k in (
            "lora_rank", "learning_rate", "batch_size", "epochs", "control")) or "-"
        cells.append([m["task"], m["checkpoint"], settings, _f(m["value_a"]), _f(m["value_b"]), _f(m["diff"], True),
                      m["test"] or "-", _f(m["p"]), _f(m["p_holm"]),
                      "within noise" if m["within_noise"] else "" if m["within_noise"] is None else "differs"])
    widths = [max(len(x) for x in col) for col in zip(header, *cells)]
    notes = [f"{len(out['matched'])} matching configuration(s); only in A: {out['only_a']}, only in B: {out['only_b']}."]
    print(render("analyze/table.txt.j2", title=f"{out['a']} vs {out['b']} ({out['store']})", header=header,
                 cells=cells, widths=widths, notes=notes), end="")
    return 0
