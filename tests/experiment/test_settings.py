"""The one settings schema: the reference doc, unknown names, and every setting reaching finetune.yaml."""
from pathlib import Path

import pytest

from cruijff_kit.errors import CkError, CkErrors
from cruijff_kit.experiment.parse import parse_summary_text
from cruijff_kit.settings import BY_KEY, PLAN_SETTINGS, RUN_SETTINGS, lookup, reference_markdown

ROOT = Path(__file__).parents[2]
CANON = (Path(__file__).parent / "canonical.md").read_text()


def test_reference_doc_is_generated_from_the_schema():
    doc = ROOT / "skills" / "scaffold-torchtune" / "references" / "setup-fields.md"
    assert doc.read_text() == reference_markdown(), \
        "regenerate: PYTHONPATH=tools python -m cruijff_kit.settings > " + str(doc.relative_to(ROOT))


def test_every_plan_setting_is_documented_with_its_names():
    doc = reference_markdown()
    for s in PLAN_SETTINGS:
        assert f"| {s.name} |" in doc
    for s in RUN_SETTINGS:
        assert f"`{s.key}`" in doc


@pytest.mark.parametrize("written,key", [
    ("Warmup steps", "lr_warmup_steps"), ("warmup_steps", "lr_warmup_steps"), ("LR warmup steps", "lr_warmup_steps"),
    ("lora_dropout", "lora_dropout"), ("LoRA Dropout", "lora_dropout"), ("Learning rate", "learning_rate"),
    ("Evaluation split", "eval_split"), ("Eval max tokens", "eval_max_tokens"), ("Nodes", "num_nodes"),
    ("CPU ranks", "num_cpu_ranks"), ("Logger", "logger"), ("GPUs", "num_gpus"), ("Seed", "seed"),
    ("LoRA alpha", "lora_alpha"), ("Gradient accumulation steps", "gradient_accumulation_steps"),
    ("Max steps per epoch", "max_steps_per_epoch"), ("Weight decay", "weight_decay"),
])
def test_todays_names_stay_valid(written, key):
    assert lookup(written).key == key


@pytest.mark.parametrize("typo,near", [
    ("Warmup step", "Warmup steps"), ("LoRA dropuot", "LoRA dropout"), ("Learnin rate", "Learning rate"),
    ("Weight decy", "Weight decay"), ("Gradient acumulation steps", "Gradient accumulation steps"),
])
def test_unknown_configuration_key_is_an_error_naming_the_nearest(typo, near):
    text = CANON.replace("- **Epochs:** 1", f"- **Epochs:** 1\n- **{typo}:** 20")
    with pytest.raises(CkError) as info:
        parse_summary_text(text, "exp/experiment_summary.md")
    errs = info.value.errors if isinstance(info.value, CkErrors) else [info.value]
    e = next(e for e in errs if e.field == typo)
    assert e.line == 15 and "unknown setting" in e.message and repr(near) in e.hint
    assert str(e).startswith(f"exp/experiment_summary.md:15: {typo}: unknown setting")


def test_every_defaulted_setting_can_be_set_in_configuration():
    lines = []
    for s in PLAN_SETTINGS:
        value = {"int": "3", "float": "0.5", "bool": "true", "text": '"x"', "choice": s.choices[0] if s.choices else "",
                 "name": "validation", "modules": "q_proj, k_proj"}[s.kind]
        lines.append(f"- **{s.name}:** {value}")
    text = CANON.replace("- **Epochs:** 1\n- **GPUs:** 1\n- **Batch size:** 4\n- **System prompt:** \"\"\n"
                         "- **Validation during training:** false", "\n".join(lines))
    # the runs table defers to Configuration ('-'): a value in both places that differs is refused
    text = text.replace("| 8 | 1e-5 | 4 | Fine-tuned", "| - | - | - | Fine-tuned")
    exp = parse_summary_text(text)
    assert {k for k, _ in exp.settings} == {s.key for s in PLAN_SETTINGS}
    assert exp.value("lora_attn_modules") == ("q_proj", "k_proj") and exp.value("train_on_input") is True
    assert exp.value("apply_lora_to_mlp") is True and exp.value("lora_dropout") == 0.5


@pytest.mark.parametrize("key,text,needle", [
    ("lora_dropout", "1.0", "< 1"), ("lora_dropout", "-0.1", ">= 0"), ("learning_rate", "inf", "finite"),
    ("learning_rate", "nan", "finite"), ("lora_rank", "100000", "<= 4096"), ("epochs", "1e9", "whole number"),
    ("seed", "99999999999999999999", "whole number"), ("lora_attn_modules", "q_proj, mlp", "unknown module"),
    ("logger", "tensorboard", "one of"), ("apply_lora_to_mlp", "maybe", "true or false"),
    ("batch_size", "0", ">= 1"), ("lr_warmup_steps", "-5", ">= 0"),
])
def test_bounds(key, text, needle):
    with pytest.raises(ValueError, match=needle):
        BY_KEY[key].parse_text(text)
