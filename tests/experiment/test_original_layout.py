"""The original cruijff_kit markdown layout (its design-experiment template before YAML) is read
as well as ours: Overview question, Variables, Evaluation Tasks, Evaluation Plan prose or matrix,
Configuration split into Training / Evaluation / Output. Nothing is silently dropped."""
from pathlib import Path

import pytest

from cruijff_kit.errors import CkError, CkErrors
from cruijff_kit.experiment.parse import parse_summary_text

ORIG = (Path(__file__).parent / "original_layout.md").read_text()
PROSE = "All runs will be evaluated on capitalization at epoch 0."
MATRIX = """### Evaluation Matrix
| Run Name | capitalization | Notes |
|----------|----------------|-------|
| Llama-3.2-1B-Instruct_rank8 | ✓ epoch 0,1 | both |
| Llama-3.2-1B-Instruct_rank16 | ✓ epoch 1 | |
| Llama-3.2-1B-Instruct_base | ✓ | base model |"""


def _errors(text):
    with pytest.raises(CkError) as info:
        parse_summary_text(text, "orig.md")
    return info.value.errors if isinstance(info.value, CkErrors) else [info.value]


def test_original_layout_reads_question_configuration_and_plan():
    exp = parse_summary_text(ORIG, "orig.md")
    assert exp.question == "Does LoRA rank matter for capitalization?"
    assert (exp.epochs, exp.batch_size) == (2, 4)
    assert exp.value("learning_rate") == 1e-5 and exp.stated("output_dir_base") == "/scratch/me/ck-out"
    assert exp.stated("eval_temperature") == 0.0 and exp.stated("eval_scorer") == "match"
    [ev] = exp.evaluations
    assert (ev.task, ev.script, ev.epochs, ev.runs) == ("capitalization", "tasks/capitalization/inspect_task.py", (0,), ())
    assert ev.description == "Capitalize a word"
    assert [r.value("lora_rank") for r in exp.runs] == [8, 16, None]
    named = "\n".join(exp.warnings)
    for what in ("Recipe", "Naming pattern", "Example", "words test split"):
        assert what in named
    assert [t for t, _ in exp.other_sections] == ["Variables", "Compute Estimates", "Naming Conventions"]


@pytest.mark.parametrize("prose,epochs,spec", [
    ("All runs will be evaluated on capitalization at all epochs.", (0, 1), "all"),
    ("All runs will be evaluated on capitalization at every epoch.", (0, 1), "all"),
    ("All runs will be evaluated on `capitalization` at the last epoch.", (1,), "last"),
    ("All runs will be evaluated on capitalization at epochs 0 and 1.", (0, 1), ""),
    ("All runs will be evaluated on capitalization at epoch_1.", (1,), ""),
])
def test_evaluation_plan_prose(prose, epochs, spec):
    exp = parse_summary_text(ORIG.replace(PROSE, prose))
    [ev] = exp.evaluations
    assert (ev.epochs, ev.epoch_spec) == (epochs, spec)


def test_evaluation_matrix_selects_runs_and_epochs():
    exp = parse_summary_text(ORIG.replace(PROSE, MATRIX))
    got = {(e.runs, e.epochs) for e in exp.evaluations}
    assert got == {(("Llama-3.2-1B-Instruct_rank8",), (0, 1)), (("Llama-3.2-1B-Instruct_rank16",), (1,)),
                   (("Llama-3.2-1B-Instruct_base",), (1,))}
    rank16 = exp.runs[1]
    assert [exp.eval_epochs(e, rank16) for e in exp.evaluations if e.applies_to(rank16.name)] == [(1,)]


@pytest.mark.parametrize("old,new,field,needle", [
    (PROSE, "All runs will be evaluated on spelling at epoch 0.", "Evaluation Plan", "not in the Evaluation Tasks"),
    (PROSE, "All runs will be evaluated on capitalization at epoch zero.", "Evaluation Plan", "cannot read the epochs"),
    (PROSE, "We will look at the results later.", "Evaluation Plan", "cannot read which tasks"),
    (PROSE, MATRIX.replace("✓ epoch 1 |", "maybe |"), "capitalization", "cannot read the cell"),
    (PROSE, MATRIX.replace("| Llama-3.2-1B-Instruct_rank16 |", "| rank99 |"), "Evaluation Matrix", "not in the runs table"),
    ("- **Format:** JSON", "- **Format:** CSV", "Format", "not supported"),
    ("`/data/words.json`", "`/data/words.csv`", "Dataset", ".csv files are not supported"),
    ("- **Temperature:** 0.0", "- **Temperature:** hot", "Temperature", "expected a number"),
    ("- **Temperature:** 0.0", "- **Temprature:** 0.0", "Temprature", "unknown setting"),
    ("- **Batch size:** 4", "- **Batch size:** 4\n- **Batch size:** 8", "Batch size", "set twice"),
])
def test_what_ck_cannot_honour_is_an_error_with_its_line(old, new, field, needle):
    assert old in ORIG
    text = ORIG.replace(old, new)
    errors = _errors(text)
    match = [e for e in errors if e.field == field]
    assert match and needle in match[0].message, [str(e) for e in errors]
    assert match[0].line and match[0].file == "orig.md"


def test_variables_that_disagree_with_the_runs_are_a_named_warning():
    exp = parse_summary_text(ORIG.replace("| LoRA rank | 8, 16 |", "| LoRA rank | 8, 32 |"))
    assert any("Variables lists LoRA rank 32, 8 but the runs table has 16, 8" in w for w in exp.warnings)


def test_evaluation_system_prompt_in_the_evaluation_subsection():
    exp = parse_summary_text(ORIG.replace('### Evaluation\n- **Temperature:** 0.0\n- **Scorer:** match\n- **System prompt:** ""',
                                          '### Evaluation\n- **System prompt:** "Answer briefly."'))
    assert exp.system_prompt == "" and exp.eval_system_prompt(exp.evaluations[0]) == "Answer briefly."
    assert any("differs from the training one" in w for w in exp.warnings)
