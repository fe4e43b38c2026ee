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


@pytest.mark.parametrize("scorer", ["exact", "includes", "numeric"])
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


def test_generated_task_runs_on_tiny_model(data, tmp_path):
    import inspect_ai
    from inspect_ai.log import read_eval_log

    from cruijff_kit.tiny_model import make_tiny_model

    model = make_tiny_model(tmp_path / "model")
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
    assert 0.0 <= log.results.scores[0].metrics["accuracy"].value <= 1.0


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
