"""parse(render(x)) == x for any experiment the model can hold."""
import string

from hypothesis import given, settings, strategies as st

from cruijff_kit.experiment.model import Evaluation, Experiment, Run, RunType, StatusRow
from cruijff_kit.experiment.parse import parse_summary_text
from cruijff_kit.experiment.render import render_summary

name = st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=20).filter(
    lambda s: s[0].isalnum())
path = st.builds(lambda parts: "/" + "/".join(parts), st.lists(name, min_size=1, max_size=4))
lr = st.floats(min_value=1e-9, max_value=10, allow_nan=False, allow_infinity=False)
cell_text = st.text(string.ascii_letters + string.digits + " ~.:/|-", max_size=12).map(str.strip).filter(
    lambda s: s not in ("-", "n/a", "N/A", "na", "none") and not s.startswith("-"))
prompt = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)


@st.composite
def experiments(draw):
    models = draw(st.lists(st.tuples(name, path), min_size=1, max_size=3, unique_by=lambda m: m[0]))
    model_names = [m for m, _ in models]
    runs = []
    for run_name in draw(st.lists(name, min_size=1, max_size=6, unique=True)):
        if draw(st.booleans()):
            runs.append(Run(name=run_name, model=draw(st.sampled_from(model_names)), type=RunType.FINETUNED,
                            lora_rank=draw(st.integers(1, 512)), learning_rate=draw(st.one_of(st.none(), lr)),
                            batch_size=draw(st.one_of(st.none(), st.integers(1, 256))),
                            est_time=draw(cell_text),
                            extra=tuple(draw(st.lists(st.tuples(st.sampled_from(["LoRA Alpha", "Notes"]), cell_text.filter(bool)),
                                                      max_size=2, unique_by=lambda e: e[0])))))
        else:
            runs.append(Run(name=run_name, model=draw(st.sampled_from(model_names)), type=RunType.CONTROL,
                            est_time=draw(cell_text)))
    evals = tuple(Evaluation(task=t, script=draw(path),
                             epochs=tuple(draw(st.lists(st.integers(0, 9), min_size=1, max_size=3, unique=True))))
                  for t in draw(st.lists(name, max_size=3, unique=True)))
    status = tuple(StatusRow(run=draw(name), job=draw(cell_text), job_id=draw(st.text("0123456789", max_size=8)),
                             state=draw(st.sampled_from(["", "PENDING", "COMPLETED"])), duration=draw(cell_text))
                   for _ in range(draw(st.integers(0, 3))))
    extra = tuple(draw(st.lists(st.tuples(st.sampled_from(["Learning rate", "Seed", "Logger"]), cell_text.filter(bool)),
                                max_size=3, unique_by=lambda e: e[0])))
    others = tuple(draw(st.lists(st.tuples(st.sampled_from(["Objective", "Notes"]), st.sampled_from(
        ["Find the best rank.", "Line one.\n\n- bullet"])), max_size=2, unique_by=lambda e: e[0])))
    return Experiment(name=draw(name), experiment_dir=draw(path), models=tuple(models), dataset=draw(path),
                      epochs=draw(st.integers(1, 20)), gpus=draw(st.integers(0, 8)), batch_size=draw(st.integers(1, 64)),
                      system_prompt=draw(prompt), validation=draw(st.booleans()), config_extra=extra,
                      runs=tuple(runs), evaluations=evals, status=status, other_sections=others)


@settings(max_examples=60, deadline=None)
@given(experiments())
def test_parse_render_roundtrip(exp):
    text = render_summary(exp)
    assert parse_summary_text(text) == exp
    assert render_summary(parse_summary_text(text)) == text
