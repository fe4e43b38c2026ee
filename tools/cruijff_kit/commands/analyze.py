"""`ck analyze DIR [--out DIR] [--json]` (analyze-experiment)."""
from __future__ import annotations

from pathlib import Path

from ._common import emit_json, experiment_dir


def register(sub) -> None:
    p = sub.add_parser("analyze", help="results table, plots and report from an experiment's logs",
                       description="analyze-experiment: inspect-ai .eval logs + torchtune loss logs -> "
                                   "results.csv, results.md, PNG plots, report.md (partial results are fine).")
    p.add_argument("dir", metavar="DIR", help="experiment directory (holds experiment_summary.md)")
    p.add_argument("--out", metavar="DIR", help="where to write the analysis (default: DIR/analysis)")
    p.add_argument("--json", action="store_true", help="rows, best, missing, problems as JSON")
    p.add_argument("--no-store", action="store_true",
                   help="do not write the results into the results store (`ck results`)")
    p.add_argument("--samples", metavar="RUN", help="print each graded sample of RUN's evaluations "
                                                   "(run name or directory) instead of analyzing")
    p.add_argument("--limit", type=int, default=20, metavar="N", help="samples per log with --samples (default 20)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..analyze.pipeline import analyze_experiment, summary_text
    from ..errors import CkError

    if args.limit < 0:
        raise CkError(f"--limit must be 0 or more, got {args.limit}", field="--limit")
    if args.out and not Path(args.out).expanduser().resolve().parent.is_dir():
        # a typo in a parent would otherwise grow a directory tree somewhere unexpected
        raise CkError("the parent directory of --out does not exist", file=Path(args.out).expanduser().resolve().parent,
                      field="--out", hint="create it first, or give an existing directory")
    if args.samples:
        from ..analyze.samples import sample_lines

        print("\n".join(sample_lines(experiment_dir(args.dir), args.samples, limit=max(args.limit, 0))))
        return 0

    analysis = analyze_experiment(experiment_dir(args.dir), out=args.out, store=not args.no_store)
    if args.json:
        emit_json(analysis.to_dict())
    else:
        print(summary_text(analysis), end="")
    return 0
