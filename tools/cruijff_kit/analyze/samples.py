"""`ck analyze DIR --samples RUN`: each graded sample of a run's evaluations, in the terminal.

An agent (or a user over ssh) cannot open `inspect view`; this prints, per successful .eval log
of the run, one line per sample: id, score, target and the model's answer (from the scorer's
`answer`, else the completion), cut to a readable width. Reads sample summaries only.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import CkError
from ..experiment.naming import run_directories
from ..experiment.parse import load_experiment
from .eval_logs import EvalScan, scan_run
from ..state import layout


def _short(text: object, width: int) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= width else s[: width - 1] + "…"


def sample_lines(exp_dir: Path, run: str, limit: int = 20, width: int = 40) -> list[str]:
    exp = load_experiment(exp_dir / layout.SUMMARY)
    dirs = run_directories(exp, str(exp_dir / layout.SUMMARY))
    by_name = {**{d: d for d in dirs.values()}, **dirs}
    if run not in by_name:
        raise CkError(f"no run {run!r} in this experiment (runs: {', '.join(dirs.values())})",
                      file=exp_dir / layout.SUMMARY, field="--samples")
    scan = EvalScan()
    scan_run(exp_dir, by_name[run], scan)
    if not scan.results:
        return [f"{by_name[run]}: no successful .eval log in {exp_dir / by_name[run] / 'eval' / 'logs'}",
                *scan.problems]
    from inspect_ai.log import read_eval_log_sample_summaries

    out: list[str] = []
    for (_, task, epoch), res in sorted(scan.results.items(), key=lambda kv: (kv[0][1], kv[0][2] if kv[0][2] is not None else -1)):
        where = "base model" if epoch is None else f"epoch_{epoch}"
        out.append(f"== {by_name[run]} {task} {where}: {res.scorer}/{res.metric} = "
                   f"{'-' if res.value is None else f'{res.value:.3f}'} ({res.samples} samples) {res.path}")
        summaries = read_eval_log_sample_summaries(res.path)
        for s in summaries[:limit]:
            score = (s.scores or {}).get(res.scorer)
            value = "-" if score is None else score.value
            answer = "" if score is None or score.answer is None else score.answer
            target = s.target if isinstance(s.target, str) else " | ".join(s.target)
            inp = s.input if isinstance(s.input, str) else (s.input[-1].text if s.input else "")
            out.append(f"  [{s.id}] {value}  target={_short(target, width)!r}  answer={_short(answer, width)!r}"
                       f"  input={_short(inp, width)!r}")
        if len(summaries) > limit:
            out.append(f"  ... {len(summaries) - limit} more (--limit N; full log: ck inspect log dump {res.path})")
    return out + scan.problems
