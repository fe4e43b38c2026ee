"""parse(render(x)) == x for any experiment the model can hold, every schema setting included:
each plan setting in Configuration, each training setting as a runs-table column."""
import string

from hypothesis import given, settings, strategies as st

from cruijff_kit.experiment.model import Evaluation, Experiment, Run, RunType, StatusRow
from cruijff_kit.experiment.parse import parse_summary_text
from cruijff_kit.experiment.render import render_summary
from cruijff_kit.settings import LORA_MODULES, PLAN_SETTINGS, RUN_SETTINGS, Setting

name = st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=20).filter(
    lambda s: s[0].isalnum())
path = st.builds(lambda parts: "/" + "/".join(parts), st.lists(name, min_size=1, max_size=4))
data_path = st.builds(lambda p: p + ".json", path)  # a dataset is .json, .parquet or a directory
cell_text = st.text(string.ascii_letters + string.digits + " ~.:/|-", max_size=12).map(str.strip).filter(
    lambda s: s not in ("-", "n/a", "N/A", "na", "none") and not s.startswith("-"))
# run names that spell no setting value (`lr1e-5`): a name that spells another value than the run's is refused
run_name_text = st.builds(lambda s: "run-" + s, st.text(string.ascii_letters + string.digits + ".-", max_size=16))
safe = name.filter(lambda s: ".." not in s)  # names that become file names
prompt = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)


def value_of(s: Setting):
    """Any value the schema accepts for s (bounds, choices, types)."""
    if s.kind == "int":
        lo = int(s.minimum if s.minimum is not None else 0)
        return st.integers(lo, int(s.maximum if s.maximum is not None else lo + 10**6))
    if s.kind == "float":
        lo = s.minimum if s.minimum is not None else (s.above if s.above is not None else 0.0)
        hi = s.maximum if s.maximum is not None else s.below
        return st.floats(min_value=lo, max_value=hi, exclude_min=s.above is not None,
                         exclude_max=s.below is not None, allow_nan=False, allow_infinity=False)
    if s.kind == "bool":
        return st.booleans()
    if s.kind == "choice":
        return st.sampled_from(s.choices)
    if s.kind == "name":
        return safe
    if s.kind == "modules":
        return st.lists(st.sampled_from(LORA_MODULES), min_size=1, max_size=4, unique=True)
    return prompt


def settings_of(pool, draw):
    if not pool:  # every per-run setting already stated in Configuration
        return {}
    chosen = draw(st.lists(st.sampled_from(pool), unique_by=lambda s: s.key, max_size=len(pool)))
    return {s.key: draw(value_of(s)) for s in chosen}


@st.composite
def experiments(draw):
    models = draw(st.lists(st.tuples(name, path), min_size=1, max_size=3, unique_by=lambda m: m[0]))
    model_names = [m for m, _ in models]
    config = settings_of(list(PLAN_SETTINGS), draw)
    runs = []
    for run_name in draw(st.lists(run_name_text, min_size=1, max_size=6, unique=True)):
        # a run's own values never contradict Configuration (that is refused, tests/adversarial)
        own = settings_of([s for s in RUN_SETTINGS if s.key not in config], draw)
        extra = tuple(draw(st.lists(st.tuples(st.sampled_from(["Notes", "Comment"]), cell_text.filter(bool)),
                                    max_size=2, unique_by=lambda e: e[0])))
        if draw(st.booleans()):
            if "lora_rank" not in config:
                own.setdefault("lora_rank", draw(st.integers(1, 512)))
            runs.append(Run(name=run_name, model=draw(st.sampled_from(model_names)), type=RunType.FINETUNED,
                            settings=tuple(own.items()), est_time=draw(cell_text), extra=extra))
        else:
            runs.append(Run(name=run_name, model=draw(st.sampled_from(model_names)), type=RunType.CONTROL,
                            settings=(), est_time=draw(cell_text), extra=extra))  # controls train nothing
    n_epochs = config.get("epochs", 1)
    evals = []
    for t in draw(st.lists(safe, max_size=3, unique=True)):
        spec = draw(st.sampled_from(["", "all", "last"]))
        epochs = (tuple(range(n_epochs)) if spec == "all" else (n_epochs - 1,) if spec == "last"
                  else tuple(draw(st.lists(st.integers(0, 9), min_size=1, max_size=3, unique=True))))
        evals.append(Evaluation(
            task=t, script=draw(path), epochs=epochs, epoch_spec=spec,
            split=draw(st.one_of(st.none(), safe)), system_prompt=draw(st.one_of(st.none(), prompt)),
            runs=tuple(draw(st.lists(st.sampled_from([r.name for r in runs]), max_size=2, unique=True))),
            dataset=draw(st.one_of(st.just(""), data_path)), description=draw(st.one_of(st.just(""), cell_text))))
    status = tuple(StatusRow(run=draw(name), job=draw(cell_text), job_id=draw(st.text("0123456789", max_size=8)),
                             state=draw(st.sampled_from(["", "PENDING", "COMPLETED"])), duration=draw(cell_text))
                   for _ in range(draw(st.integers(0, 3))))
    others = tuple(draw(st.lists(st.tuples(st.sampled_from(["Objective", "Notes"]), st.sampled_from(
        ["Find the best rank.", "Line one.\n\n- bullet"])), max_size=2, unique_by=lambda e: e[0])))
    return Experiment(name=draw(name), experiment_dir=draw(path), models=tuple(models), dataset=draw(data_path),
                      question=draw(st.one_of(st.just(""), prompt)), settings=tuple(config.items()),
                      runs=tuple(runs), evaluations=tuple(evals), status=status, other_sections=others)


@settings(max_examples=60, deadline=None)
@given(experiments())
def test_parse_render_roundtrip(exp):
    text = render_summary(exp)
    assert parse_summary_text(text) == exp
    assert render_summary(parse_summary_text(text)) == text


def test_every_schema_setting_is_a_column_or_a_configuration_line():
    run = Run(name="r", model="m", type=RunType.FINETUNED,
              settings=tuple((s.key, s.default if s.default is not None else {"lora_rank": 8, "lora_alpha": 16.0,
                              "max_steps_per_epoch": 5, "logger": "disk",
                              "validation_every_n_steps": 10, "trainer": "trl"}[s.key]) for s in RUN_SETTINGS))
    exp = Experiment(name="e", models=(("m", "/m"),), dataset="/d.json", runs=(run,),
                     settings=tuple((s.key, s.default) for s in PLAN_SETTINGS if s.default is not None))
    text = render_summary(exp)
    for s in RUN_SETTINGS:
        assert f" {s.column} |" in text
    assert parse_summary_text(text) == exp
