from pathlib import Path

import pytest

from cruijff_kit.errors import CkError, CkErrors
from cruijff_kit.experiment.model import RunType
from cruijff_kit.experiment.parse import load_experiment, parse_summary_text

CANON = (Path(__file__).parent / "canonical.md").read_text()


def test_canonical_summary_parses():
    exp = parse_summary_text(CANON)
    assert exp.name == "cap_4L_lora_lr_sweep"
    assert exp.experiment_dir == "/scratch/me/cap_4L_lora_lr_sweep"
    assert exp.models == (("Llama-3.2-1B-Instruct", "/models/Llama-3.2-1B-Instruct"),)
    assert exp.dataset == "/data/words_4L_80P_300.json"
    assert (exp.epochs, exp.gpus, exp.batch_size, exp.system_prompt, exp.validation) == (1, 1, 4, "", False)
    ft, ctl = exp.runs
    assert ft.type is RunType.FINETUNED and ft.lora_rank == 8 and ft.learning_rate == 1e-5 and ft.batch_size == 4
    assert ctl.type is RunType.CONTROL and ctl.lora_rank is None and ctl.learning_rate is None
    assert ft.line == 22
    assert exp.evaluations[0].task == "capitalization" and exp.evaluations[0].epochs == (0,)


def test_tolerant_column_order_case_spacing_and_type_spelling():
    text = CANON.replace(
        "| Run Name | Model | LoRA Rank | Learning Rate | Batch Size | Type | Est. Time |",
        "|   type | run name|learning rate | lora rank | MODEL | batch size | est. time |",
    ).replace(
        "| Llama-3.2-1B-Instruct_rank8_lr1e-5 | Llama-3.2-1B-Instruct | 8 | 1e-5 | 4 | Fine-tuned | ~10s |",
        "| fine-tuned | Llama-3.2-1B-Instruct_rank8_lr1e-5 | 1e-5 | 8 | Llama-3.2-1B-Instruct | - | ~10s |",
    ).replace(
        "| Llama-3.2-1B-Instruct_base | Llama-3.2-1B-Instruct | - | - | - | Control | N/A |",
        "| control | Llama-3.2-1B-Instruct_base |  | - | Llama-3.2-1B-Instruct | - | N/A |",
    )
    exp = parse_summary_text(text)
    assert [r.type for r in exp.runs] == [RunType.FINETUNED, RunType.CONTROL]
    assert exp.runs[0].lora_rank == 8 and exp.runs[0].batch_size is None


def test_missing_tools_section_defaults_to_torchtune_and_inspect():
    start, end = CANON.index("## Tools"), CANON.index("## Resources")
    exp = parse_summary_text(CANON[:start] + CANON[end:])
    assert (exp.tools.preparation, exp.tools.evaluation) == ("torchtune", "inspect-ai")


def test_unknown_sections_are_kept():
    exp = parse_summary_text(CANON + "\n## Objective\n\nFind the best rank.\n\n- a list\n")
    assert exp.other_sections == (("Objective", "Find the best rank.\n\n- a list"),)


def _err(text):
    with pytest.raises(CkError) as info:
        parse_summary_text(text, "exp/experiment_summary.md")
    err = info.value
    return err.errors if isinstance(err, CkErrors) else [err]


ROW = "| Llama-3.2-1B-Instruct_rank8_lr1e-5 | Llama-3.2-1B-Instruct | 8 | 1e-5 | 4 | Fine-tuned | ~10s |"


@pytest.mark.parametrize("bad,field,line,needle", [
    (ROW.replace("Fine-tuned", "Finetune-ish"), "Type", 22, "unknown run type"),
    (ROW.replace("| 8 |", "| eight |"), "LoRA Rank", 22, "whole number"),
    (ROW.replace("| 8 |", "| 0 |"), "LoRA Rank", 22, ">= 1"),
    (ROW.replace("1e-5", "fast"), "Learning Rate", 22, "number"),
    (ROW.replace("1e-5", "-0.1"), "Learning Rate", 22, "positive"),
    (ROW.replace("| 4 |", "| four |"), "Batch Size", 22, "whole number"),
    (ROW.replace("| Llama-3.2-1B-Instruct |", "| Llama-9B |"), "Model", 22, "not listed under Resources"),
    (ROW.replace("| 8 |", "| - |"), "LoRA Rank", 22, "needs a LoRA rank"),
    (ROW + "\n" + ROW, "Run Name", 23, "duplicate run name"),
])
def test_bad_run_rows_name_file_line_and_field(bad, field, line, needle):
    errors = _err(CANON.replace(ROW, bad))
    match = [e for e in errors if e.field == field]
    assert match, [str(e) for e in errors]
    assert match[0].line == line and needle in match[0].message
    assert str(match[0]).startswith(f"exp/experiment_summary.md:{line}: {field}: ")


@pytest.mark.parametrize("old,new,field,needle", [
    ("- **Model Preparation:** torchtune", "- **Model Preparation:** axolotl", "Model Preparation", "unsupported"),
    ("- **Evaluation:** inspect-ai", "- **Evaluation:** lm-eval", "Evaluation", "unsupported"),
    ("- **Epochs:** 1", "- **Epochs:** one", "Epochs", "whole number"),
    ("- **GPUs:** 1", "- **GPUs:** -2", "GPUs", ">= 0"),
    ("- **Validation during training:** false", "- **Validation during training:** maybe", "Validation during training", "true or false"),
    ("| capitalization | tasks/capitalization/inspect_task.py | 0 |", "| capitalization | t.py | zero |", "Epochs", "whole number"),
    ("| Task | Script | Epochs |", "| Script | Epochs | Notes |", "Evaluation", "no 'Task' column"),
    ("| Run Name | Model |", "| Name Of Run | Model |", "All Runs", "no 'name' column"),
])
def test_bad_sections(old, new, field, needle):
    assert old in CANON
    errors = _err(CANON.replace(old, new))
    match = [e for e in errors if e.field == field]
    assert match and needle in match[0].message, [str(e) for e in errors]


def test_unknown_tool_error_lists_supported():
    errors = _err(CANON.replace("inspect-ai\n## Resources", "lm-eval\n## Resources"))
    assert "inspect-ai" in (errors[0].hint or "")


def test_all_problems_reported_together():
    bad = CANON.replace(ROW, ROW.replace("| 8 |", "| x |").replace("Fine-tuned", "Fine-tuned")) \
        .replace("- **Epochs:** 1", "- **Epochs:** z")
    errors = _err(bad)
    assert {e.field for e in errors} >= {"LoRA Rank", "Epochs"}


def test_no_title_and_no_runs():
    assert _err("## All Runs\n")[0].field == "title"
    errors = _err(CANON[: CANON.index("## All Runs")])
    assert any(e.field == "All Runs" for e in errors)


def test_missing_file_and_non_utf8(tmp_path):
    with pytest.raises(CkError, match="not found"):
        load_experiment(tmp_path)
    (tmp_path / "experiment_summary.md").write_bytes(b"# x\n\xff\xfe")
    with pytest.raises(CkError, match="UTF-8"):
        load_experiment(tmp_path)
