"""inspect-ai task: capitalize one lowercase word.

The prompt is the training format exactly: torchtune's instruct_dataset turns a row into
[system (when a system prompt is set), user = input] and trains on assistant = output; here the
same messages go through the model's chat template with the generation prompt, so the tokens
the model sees are the training sequence's prefix.

inspect's own exact() and includes() fold case, which would score "apple" as correct for "Apple";
our scorers compare case-sensitively.

    inspect eval inspect_task.py@capitalization --model hf/PATH -T data_path=words.json \
        [-T split=test] [-T system_prompt=...] [-T scorer=exact|includes|both] -M do_sample=false
"""
from __future__ import annotations

import json
from pathlib import Path

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.scorer import CORRECT, INCORRECT, Score, Scorer, Target, accuracy, includes, scorer, stderr
from inspect_ai.model import ChatMessageSystem
from inspect_ai.solver import Generate, Solver, TaskState, generate, solver

SCORERS = ("exact", "includes", "both")


def load_rows(data_path: str | Path, split: str) -> list[dict]:
    """Rows of one split: a JSON file {"train": [...], ...} or a directory of <split>.parquet files."""
    path = Path(data_path)
    if path.is_dir():
        import pyarrow.parquet as pq

        return pq.read_table(path / f"{split}.parquet").to_pylist()
    data = json.loads(path.read_text(encoding="utf-8"))
    if split not in data:
        raise ValueError(f"{path} has no split {split!r} (has: {', '.join(data)})")
    return data[split]


@scorer(metrics=[accuracy(), stderr()])
def exact_case() -> Scorer:
    """Correct when the completion, stripped of surrounding whitespace, equals the target exactly."""

    async def score(state: TaskState, target: Target) -> Score:
        answer = state.output.completion.strip()
        return Score(value=CORRECT if answer in target.target else INCORRECT, answer=answer)

    return score


@solver
def literal_system_message(text: str) -> Solver:
    """The system prompt verbatim (inspect's system_message() would format {braces} in it)."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        state.messages.insert(0, ChatMessageSystem(content=text))
        return state

    return solve


@task
def capitalization(data_path: str, split: str = "test", system_prompt: str = "", scorer: str = "exact") -> Task:
    if scorer not in SCORERS:
        raise ValueError(f"scorer {scorer!r} is not one of: {', '.join(SCORERS)}")
    rows = load_rows(data_path, split)
    samples = [Sample(id=i, input=r["input"], target=r["output"]) for i, r in enumerate(rows)]
    scorers = {
        "exact": [exact_case()],
        "includes": [includes(ignore_case=False)],
        "both": [exact_case(), includes(ignore_case=False)],
    }[scorer]
    solver = ([literal_system_message(system_prompt)] if system_prompt else []) + [generate()]
    return Task(dataset=MemoryDataset(samples, name=f"capitalization_{split}"), solver=solver, scorer=scorers)
