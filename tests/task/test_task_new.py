"""`ck task new`: the generated task file runs on the tiny model and writes a readable log."""
import json
from pathlib import Path

import pytest

from cruijff_kit.cli import main


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("task")
    rows = [{"question": f"what is {i} + {i}?", "answer": str(2 * i)} for i in range(6)]
    path = root / "sums.json"
    path.write_text(json.dumps({"train": rows[:3], "test": rows[3:]}))
    return path


def _load(path: Path, name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"generated_{name}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("scorer", ["exact", "includes", "numeric", "classification", "regression"])
def test_generated_task_loads_both_formats(data, tmp_path, scorer):
    out = tmp_path / f"sums_{scorer}.py"
    assert main(["task", "new", "sums", "--dataset", str(data), "--input-field", "question",
                 "--target-field", "answer", "--scorer", scorer, "--out", str(out)]) == 0
    module = _load(out, scorer)
    task = module.sums(data_path=str(data), split="train")
    assert [s.input for s in task.dataset] == [f"what is {i} + {i}?" for i in range(3)]
    assert [s.target for s in task.dataset] == ["0", "2", "4"]

    import pyarrow as pa
    import pyarrow.parquet as pq

    pdir = tmp_path / "pq"
    pdir.mkdir()
    pq.write_table(pa.table({"question": ["a", "b"], "answer": ["1", "2"]}), pdir / "test.parquet")
    assert [s.target for s in module.sums(data_path=str(pdir), split="test").dataset] == ["1", "2"]


def test_numeric_scorer_is_model_free(data, tmp_path):
    out = tmp_path / "n.py"
    assert main(["task", "new", "n", "--dataset", str(data), "--scorer", "numeric", "--input-field", "question",
                 "--target-field", "answer", "--out", str(out)]) == 0
    module = _load(out, "numeric_fn")
    assert module.first_number("The answer is 1,024.0 apples") == 1024.0
    assert module.first_number("no digits") is None


@pytest.mark.slow
def test_generated_task_runs_on_tiny_model(data, tmp_path, tiny_model):
    import inspect_ai
    from inspect_ai.log import read_eval_log

    from tests.shared import quick_hf_batching

    quick_hf_batching()  # tests/shared.py: no idle seconds per in-process evaluation
    model = tiny_model
    out = tmp_path / "sums_task.py"
    assert main(["task", "new", "sums", "--dataset", str(data), "--input-field", "question",
                 "--target-field", "answer", "--scorer", "numeric", "--out", str(out)]) == 0
    logs = inspect_ai.eval(f"{out}@sums", task_args={"data_path": str(data), "split": "test"},
                           model=f"hf/{model}", model_args={"do_sample": False}, max_tokens=4, limit=3,
                           log_dir=str(tmp_path / "logs"), display="none")
    assert logs[0].status == "success"
    [path] = list((tmp_path / "logs").glob("*.eval"))
    log = read_eval_log(str(path))
    assert log.eval.task.endswith("sums") and len(log.samples) == 3
    assert log.results.scores[0].name == "numeric_match"
    # the score is what the task's own number parser makes of each answer, and accuracy their mean
    module = _load(out, "sums_fn")
    right = [module.first_number(s.output.completion) is not None
             and module.first_number(s.output.completion) == float(s.target) for s in log.samples]
    assert [s.scores["numeric_match"].value == "C" for s in log.samples] == right
    assert log.results.scores[0].metrics["accuracy"].value == pytest.approx(sum(right) / len(right))


@pytest.mark.parametrize("argv, message", [
    (["--input-field", "nope"], "row 0 has no field 'nope'"),
    (["--split", "dev"], "no split 'dev'"),
])
def test_bad_input_is_exit_2_and_writes_nothing(data, tmp_path, capsys, argv, message):
    out = tmp_path / "t.py"
    assert main(["task", "new", "t", "--dataset", str(data), "--target-field", "answer", "--out", str(out), *argv]) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_refuses_bad_name_and_overwrite(data, tmp_path, capsys):
    out = tmp_path / "t.py"
    assert main(["task", "new", "2bad", "--dataset", str(data), "--out", str(out)]) == 2
    out.write_text("# mine\n")
    assert main(["task", "new", "good", "--dataset", str(data), "--input-field", "question",
                 "--target-field", "answer", "--out", str(out)]) == 2
    assert out.read_text() == "# mine\n"
    assert "--force" in capsys.readouterr().err
    # a task named like one of the file's own imports/helpers would shadow it
    assert main(["task", "new", "load_rows", "--dataset", str(data), "--input-field", "question",
                 "--target-field", "answer", "--out", str(tmp_path / "u.py")]) == 2
    assert "also a name the generated file uses" in capsys.readouterr().err and not (tmp_path / "u.py").exists()


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """A 3-class dataset whose inputs are also numbers (for the regression scorer)."""
    root = tmp_path_factory.mktemp("labelled")
    rows = [{"text": f"{i} apples", "label": ["cat", "dog", "bird"][i % 3], "y": str(i * 1.5)} for i in range(12)]
    path = root / "pets.json"
    path.write_text(json.dumps({"train": rows[:6], "test": rows[6:]}))
    return path


def _new(dataset, tmp_path, scorer, target):
    out = tmp_path / f"pets_{scorer}.py"
    assert main(["task", "new", "pets", "--dataset", str(dataset), "--input-field", "text", "--target-field", target,
                 "--scorer", scorer, "--out", str(out)]) == 0
    return out, _load(out, scorer)


def test_classification_metrics_by_hand(labelled, tmp_path):
    from inspect_ai.scorer import CORRECT, INCORRECT, SampleScore, Score

    _, m = _new(labelled, tmp_path, "classification", "label")
    labels = ["bird", "cat", "dog", "cat dog"]
    assert m.parse_label("  Cat.", labels) == "cat"
    assert m.parse_label("cat dog!", labels) == "cat dog"        # the longest label first
    assert m.parse_label("dog, clearly", labels) == "dog"
    assert m.parse_label("category", labels) is None              # not a whole word
    assert m.parse_label("\n\n", labels) is None
    pairs = [("cat", "cat"), ("cat", "dog"), ("dog", "dog"), ("dog", "dog"), ("bird", None), ("bird", "cat")]
    scores = [SampleScore(score=Score(value=CORRECT if t == p else INCORRECT, metadata={"target": t, "predicted": p}))
              for t, p in pairs]
    # recall: cat 1/2, dog 2/2, bird 0/2 -> balanced accuracy 0.5
    assert m.balanced_accuracy()(scores) == pytest.approx(0.5)
    # F1 = 2TP / (2TP + FP + FN): cat 2/(2+1+1), dog 4/(4+1+0), bird 0
    per_class = m.f1_per_class()(scores)
    assert per_class == pytest.approx({"f1_bird": 0.0, "f1_cat": 0.5, "f1_dog": 0.8})
    assert m.macro_f1()(scores) == pytest.approx((0.5 + 0.8) / 3)


def test_regression_metrics_by_hand(labelled, tmp_path):
    from inspect_ai.scorer import SampleScore, Score

    _, m = _new(labelled, tmp_path, "regression", "y")
    errors = [0.5, 1.5, 3.0]
    scores = [SampleScore(score=Score(value=e)) for e in errors]
    assert m.mae()(scores) == pytest.approx(5.0 / 3)
    assert m.rmse()(scores) == pytest.approx(((0.25 + 2.25 + 9.0) / 3) ** 0.5)


@pytest.mark.parametrize("scorer, target", [("classification", "label"), ("regression", "y")])
@pytest.mark.slow
def test_new_scorers_on_tiny_model(labelled, tmp_path, tiny_model, scorer, target):
    """A real eval: the log's metrics equal what its own per-sample scores give."""
    import math
    import re

    import inspect_ai
    from inspect_ai.log import read_eval_log

    from tests.shared import quick_hf_batching

    quick_hf_batching()  # tests/shared.py: no idle seconds per in-process evaluation
    out, m = _new(labelled, tmp_path, scorer, target)
    [log] = inspect_ai.eval(f"{out}@pets", task_args={"data_path": str(labelled), "split": "test"},
                            model=f"hf/{tiny_model}", model_args={"do_sample": False}, max_tokens=4,
                            log_dir=str(tmp_path / "logs"), display="none")
    assert log.status == "success"
    log = read_eval_log(log.location)
    [score] = log.results.scores
    metrics = {k: v.value for k, v in score.metrics.items()}
    name = f"{scorer}_{'match' if scorer == 'classification' else 'error'}"
    assert score.name == name
    rows = json.loads(labelled.read_text())["test"]
    if scorer == "classification":
        labels = sorted({r["label"] for r in rows})
        pairs = [(s.target, m.parse_label(s.output.completion, labels)) for s in log.samples]
        assert [(s.scores[name].metadata["target"], s.scores[name].metadata["predicted"]) for s in log.samples] == pairs
        recall = [sum(p == c for t, p in pairs if t == c) / sum(t == c for t, _ in pairs) for c in labels]
        assert metrics["accuracy"] == pytest.approx(sum(t == p for t, p in pairs) / len(pairs))
        assert metrics["balanced_accuracy"] == pytest.approx(sum(recall) / len(recall))
        assert set(metrics) >= {"macro_f1", *(f"f1_{c}" for c in labels)}
    else:
        number = re.compile(r"[-+]?(?:\d+(?:,\d{3})*(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
        errors = [abs(float(number.search(s.output.completion).group(0).replace(",", "")) - float(s.target))
                  for s in log.samples if number.search(s.output.completion)]
        assert score.unscored_samples == len(rows) - len(errors)  # answers without a number
        if errors:
            assert metrics["mae"] == pytest.approx(sum(errors) / len(errors))
            assert metrics["rmse"] == pytest.approx(math.sqrt(sum(e * e for e in errors) / len(errors)))
        else:
            assert math.isnan(metrics["mae"]) or metrics["mae"] == 0


def test_json_has_every_field_of_its_schema_and_suggests_every_epoch(data, tmp_path, capsys):
    from jsonschema import Draft202012Validator

    from cruijff_kit.commands._common import json_schema

    capsys.readouterr()
    out = tmp_path / "sums.py"
    assert main(["task", "new", "sums", "--dataset", str(data), "--input-field", "question",
                 "--target-field", "answer", "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    schema = json_schema("task new")
    assert set(schema["properties"]) == set(report), "every documented field, and no other"
    assert not list(Draft202012Validator(schema).iter_errors(report))
    assert report["sizes"] == {"train": 3, "test": 3}
    assert report["overlap"] == {"split": "test", "with": "train", "rows": 3, "shared": 0}
    assert report["design"].endswith("sums.py@all")


def test_shared_rows_are_counted(tmp_path, capsys):
    rows = [{"question": f"q{i}", "answer": str(i)} for i in range(4)]
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"train": rows, "test": rows[:2] + [{"question": "new", "answer": "x"}]}))
    capsys.readouterr()
    assert main(["task", "new", "t", "--dataset", str(path), "--input-field", "question", "--target-field", "answer",
                 "--out", str(tmp_path / "t.py"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["overlap"]["shared"] == 2


def test_hostile_input_is_a_one_line_refusal(tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    assert main(["task", "new", "t", "--dataset", str(deep), "--out", str(tmp_path / "t.py")]) == 2
    assert "nested too deeply" in capsys.readouterr().err
    good = tmp_path / "g.json"
    good.write_text(json.dumps({"test": [{"input": "a", "output": "b"}]}))
    assert main(["task", "new", "t", "--dataset", str(good), "--out", str(tmp_path / "no" / "such" / "t.py")]) == 2
    assert "folder of --out does not exist" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()
