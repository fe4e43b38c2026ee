"""`ck doctor EXP`: is the prompt evaluated the prompt trained on? Per run, token for token.

Training writes <run>/logs/train_examples.jsonl (the first 8 examples: input_ids, labels with -100
on the prompt); evaluation records each sample's `prompt_token_ids` (.eval sample metadata). The
rows differ (training vs held-out data), so the ids compared are the ones AROUND each example's own
content: the template's prefix (BOS, turn markers, system prompt) common to every prompt, and its
suffix (end of the user turn, the assistant header, Qwen3's empty think block). Trained and
evaluated prompts share them exactly when both sides rendered one format; the first token where they
part is reported.
"""
from __future__ import annotations

import json
from pathlib import Path

from .checks import Check


def _common_prefix(seqs: list[list[int]]) -> list[int]:
    if not seqs:
        return []
    n = min(map(len, seqs))
    i = 0
    while i < n and all(s[i] == seqs[0][i] for s in seqs):
        i += 1
    return seqs[0][:i]


def _common_suffix(seqs: list[list[int]]) -> list[int]:
    return _common_prefix([s[::-1] for s in seqs])[::-1]


def trained_prompts(run_dir: Path) -> list[tuple[list[int], str]]:
    """(prompt ids, text) of each training example in train_examples.jsonl."""
    path = run_dir / "logs" / "train_examples.jsonl"
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        ex = json.loads(line)
        first = next((i for i, label in enumerate(ex["labels"]) if label != -100), len(ex["labels"]))
        out.append((ex["input_ids"][:first], ex.get("text", "")))
    return out


def evaluated_prompts(run_dir: Path) -> list[tuple[list[int], str]]:
    """(prompt_token_ids, input) of every evaluated sample that carries them."""
    from inspect_ai.log import read_eval_log

    from ..state.artifacts import list_logs

    out = []
    for log_path in list_logs(run_dir / "eval" / "logs"):
        try:
            log = read_eval_log(str(log_path))
        except Exception:  # noqa: BLE001  (a broken log is the done-check's business)
            continue
        for s in log.samples or []:
            ids = (s.metadata or {}).get("prompt_token_ids")
            if isinstance(ids, list):
                out.append((ids, str(s.input)))
    return out


def compare(trained: list[list[int]], evaluated: list[list[int]]) -> str | None:
    """None when the ids around the content agree, else where they part."""
    for name, common in (("prefix", _common_prefix), ("suffix", _common_suffix)):
        t, e, both = common(trained), common(evaluated), common(trained + evaluated)
        if len(both) < min(len(t), len(e)):
            k = len(both)
            if name == "prefix":
                return f"the prompts part at token {k}: trained {t[k:k + 6]} vs evaluated {e[k:k + 6]}"
            return (f"the prompts' endings part {k} tokens from the end: trained ...{t[-k - 6:len(t) - k]} vs "
                    f"evaluated ...{e[-k - 6:len(e) - k]}")
    return None


def check_prompt_identity(exp_dir: Path) -> list[Check]:
    from ..experiment.naming import run_directories
    from ..experiment.parse import load_experiment

    exp = load_experiment(exp_dir / "experiment_summary.md")
    dirs = run_directories(exp)
    trained_by_model: dict[str, list[tuple[str, list[tuple[list[int], str]]]]] = {}
    for run in exp.finetuned_runs:
        d = exp_dir / dirs[run.name]
        if (d / "logs" / "train_examples.jsonl").is_file():
            trained_by_model.setdefault(run.model, []).append((dirs[run.name], trained_prompts(d)))
    out = []
    for run in exp.runs:
        if run.eval_only or run.name not in dirs:
            continue
        d = exp_dir / dirs[run.name]
        evaluated = evaluated_prompts(d)
        own = [t for name, t in trained_by_model.get(run.model, []) if name == dirs[run.name]]
        trained = own[0] if own else (trained_by_model.get(run.model) or [(None, [])])[0][1]
        if not evaluated or not trained:
            continue  # nothing to compare yet (not trained / evaluated, or an older run without the records)
        problem = compare([t for t, _ in trained], [e for e, _ in evaluated])
        source = "its own training" if own else "the training of a run on the same model"
        out.append(Check(f"prompt identity {dirs[run.name]}", problem is None,
                         f"evaluated prompts ({len(evaluated)}) match {source} around the content"
                         if problem is None else f"evaluated prompts differ from {source}: {problem}",
                         None if problem is None else "re-scaffold the run (`ck scaffold`) so training and "
                         "evaluation render one prompt format, then re-run it"))
    return out
