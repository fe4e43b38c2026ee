"""The results store (analyze/store.py) and `ck results` / `ck compare` across analysed experiments."""
import contextlib
import io
import json
import multiprocessing
import shutil
import sqlite3

import pytest

from cruijff_kit.analyze.store import COLUMNS, Store
from cruijff_kit.cli import main
from cruijff_kit.errors import CkError

pytestmark = pytest.mark.slow  # real training, evaluation or training processes: `make test`, not test-fast


def _row(exp, run, value, stamp, task="t"):
    r = {c: None for c in COLUMNS}
    r.update(experiment_id=exp, experiment=exp, experiment_dir=f"/x/{exp}", run=run, checkpoint="epoch_0", epoch=0,
             task=task, split="test", metric="m/accuracy", value=value, settings=json.dumps({"lora_rank": 8}),
             analyzed_at=stamp, run_type="Fine-tuned")
    return r


def test_reanalysis_replaces_rows_without_duplicates(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    assert store.replace_experiment("e1", [_row("e1", "a", 0.5, "1"), _row("e1", "b", 0.6, "1")]) == 2
    store.replace_experiment("e2", [_row("e2", "a", 0.1, "1")])
    store.replace_experiment("e1", [_row("e1", "a", 0.7, "2")])  # b no longer has a result
    rows = store.query(experiments=["e1"])
    assert [(r["run"], r["value"]) for r in rows] == [("a", 0.7)]
    assert len(store.query()) == 2
    assert store.query(settings={"lora_rank": 8}) and not store.query(settings={"lora_rank": 16})


def _writer(path, exp, n):
    store = Store(path)
    for i in range(n):
        store.replace_experiment(exp, [_row(exp, f"r{j}", i / n, str(i)) for j in range(50)])


def test_two_analyses_at_once_leave_a_consistent_store(tmp_path):
    path = tmp_path / "r.sqlite"
    Store(path).connect().close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, exp, 20)) for exp in ("e1", "e2")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    rows = Store(path).query()
    assert len(rows) == 100
    for exp in ("e1", "e2"):  # each experiment's last analysis, whole
        assert {r["value"] for r in rows if r["experiment_id"] == exp} == {19 / 20}
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_corrupt_store_is_a_clear_error_and_left_alone(tmp_path, capsys, monkeypatch):
    path = tmp_path / "r.sqlite"
    junk = b"this is not a database\n" * 100
    path.write_bytes(junk)
    with pytest.raises(CkError, match="not a readable SQLite database"):
        Store(path).replace_experiment("e", [_row("e", "a", 0.5, "1")])
    monkeypatch.setenv("CK_RESULTS_STORE", str(path))
    assert main(["results"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "left as it is" in err and "Traceback" not in err
    assert path.read_bytes() == junk


def test_a_locked_store_is_a_clear_error(tmp_path):
    path = tmp_path / "r.sqlite"
    Store(path).replace_experiment("e", [_row("e", "a", 0.5, "1")])
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(CkError, match="locked by another process"):
            Store(path, timeout=0.2).replace_experiment("e", [_row("e", "a", 0.9, "2")])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert [r["value"] for r in Store(path).query()] == [0.5]


def _ck(*argv) -> dict:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main([*argv, "--json"]) == 0
    return json.loads(buf.getvalue())


def test_results_and_compare_across_two_analysed_experiments(grid, tmp_path, monkeypatch):
    monkeypatch.setenv("CK_RESULTS_STORE", str(tmp_path / "results.sqlite"))
    exp = grid["exp"]
    copy = tmp_path / "grid_b"
    shutil.copytree(exp, copy, symlinks=True, ignore=shutil.ignore_patterns("analysis", ".ck"))
    shutil.rmtree(copy / "rank8_lr1e-4" / "eval" / "logs")  # B lacks one configuration
    for e in (exp, copy, exp):  # exp analysed twice: no duplicate rows
        _ck("analyze", str(e))
    rows = _ck("results", "--experiment", str(exp))["rows"]
    assert len(rows) == 4 * 2 + 1  # 4 runs x 2 epochs + the control, one task and metric
    r = next(x for x in rows if x["directory"] == "rank16_lr0.001" and x["checkpoint"] == "epoch_1")
    assert r["value"] == 1.0 and r["n"] == 8 and r["split"] == "test" and r["trainer"] == "torchtune"
    assert json.loads(r["settings"])["lora_rank"] == 16 and len(r["dataset_sha256"]) == 64
    assert r["ck_version"] and r["model_path"]
    assert "samples" not in r
    both = _ck("results", "--task", "capitalization", "--set", "LoRA rank=16", "--checkpoint", "epoch_1")
    assert both["count"] == 4 and {x["experiment_dir"] for x in both["rows"]} == {str(exp), str(copy)}

    out = _ck("compare", str(exp), str(copy))
    assert out["only_a"] == 2 and out["only_b"] == 0  # rank8_lr1e-4 at epochs 0 and 1
    assert len(out["matched"]) == 3 * 2 + 1
    for m in out["matched"]:  # the same logs on both sides: paired, no difference
        assert m["diff"] == 0 and m["test"] == "McNemar exact" and m["paired_items"] == 8 and m["p"] == 1.0
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        assert main(["compare", str(exp), str(copy)]) == 0
    assert "7 matching configuration(s); only in A: 2, only in B: 0." in text.getvalue()
    csv_out = io.StringIO()
    with contextlib.redirect_stdout(csv_out):
        assert main(["results", "--csv", "--experiment", str(copy)]) == 0
    lines = csv_out.getvalue().splitlines()
    assert lines[0].startswith("experiment_id,experiment,") and len(lines) == 1 + 3 * 2 + 1


def test_design_says_when_a_planned_cell_was_measured(grid, tmp_path, monkeypatch):
    from cruijff_kit.experiment.parse import load_experiment

    monkeypatch.setenv("CK_RESULTS_STORE", str(tmp_path / "results.sqlite"))
    _ck("analyze", str(grid["exp"]))
    plan = load_experiment(grid["exp"] / "experiment_summary.md")
    [(model, path)] = plan.models
    out = _ck("design", str(tmp_path / "again"), "--model", f"{model}={path}", "--dataset", plan.dataset,
              "--ranks", "16,32", "--lrs", "1e-3", "--epochs", "2", "--gpus", "0")
    measured = {w["run"]: w["message"] for w in out["warnings"] if w["code"] == "already_measured"}
    assert set(measured) == {"tiny_rank16_lr0.001"}  # rank 32 is new; another seed would be too
    assert "grid tiny_rank16_lr0.001" in measured["tiny_rank16_lr0.001"]
    out = _ck("design", str(tmp_path / "seeded"), "--model", f"{model}={path}", "--dataset", plan.dataset,
              "--ranks", "16", "--lrs", "1e-3", "--epochs", "2", "--gpus", "0", "--set", "Seed=7")
    assert not [w for w in out["warnings"] if w["code"] == "already_measured"]


def test_a_hand_edited_setup_is_reported_with_what_it_trained_with(grid, tmp_path, monkeypatch):
    monkeypatch.setenv("CK_RESULTS_STORE", str(tmp_path / "results.sqlite"))
    copy = tmp_path / "edited"
    shutil.copytree(grid["exp"], copy, symlinks=True, ignore=shutil.ignore_patterns("analysis", ".ck"))
    setup = copy / "rank8_lr1e-4" / "setup_finetune.yaml"
    text = setup.read_text()
    assert "\nlora_rank: 8 " in text
    setup.write_text(text.replace("\nlora_rank: 8 ", "\nlora_rank: 32 "))
    data = _ck("analyze", str(copy))
    row = next(r for r in data["rows"] if r["directory"] == "rank8_lr1e-4")
    assert row["params"]["lora_rank"] == 32
    assert any("lora_rank is 8 in the plan but 32 in" in p for p in data["problems"])
    [stored] = _ck("results", "--experiment", str(copy), "--set", "LoRA rank=32", "--checkpoint", "epoch_1")["rows"]
    assert stored["directory"] == "rank8_lr1e-4"
    report = (copy / "analysis" / "report.md").read_text()
    assert "lora_rank is 8 in the plan but 32" in report


def test_rerun_repeats_the_cell_a_run_trained_with(grid, tmp_path, monkeypatch):
    from cruijff_kit.experiment.parse import load_experiment

    monkeypatch.setenv("CK_RESULTS_STORE", str(tmp_path / "results.sqlite"))
    src = tmp_path / "src"
    shutil.copytree(grid["exp"], src, symlinks=True, ignore=shutil.ignore_patterns("analysis", ".ck"))
    setup = src / "rank16_lr0.001" / "setup_finetune.yaml"
    setup.write_text(setup.read_text().replace("\nseed: 1234 ", "\nseed: 99 "))  # edited by hand after the plan
    _ck("analyze", str(src))
    out = _ck("rerun", str(src), "rank16_lr0.001", str(tmp_path / "again"))
    assert out["run"] == "tiny_rank16_lr0.001" and out["settings"]["seed"] == 99
    assert out["already_measured"] and "tiny_rank16_lr0.001" in out["already_measured"][0]
    plan = load_experiment(tmp_path / "again" / "experiment_summary.md")
    orig = load_experiment(src / "experiment_summary.md")
    [run] = plan.runs  # one fine-tuned run, no control
    assert run.finetuned and (run.value("lora_rank"), run.value("learning_rate")) == (16, 1e-3)
    assert plan.value("seed") == 99 and plan.value("epochs") == 2
    assert plan.models == orig.models and plan.dataset == orig.dataset
    assert [(e.task, e.epochs) for e in plan.evaluations] == [(e.task, e.epochs) for e in orig.evaluations]
    text = io.StringIO()
    with contextlib.redirect_stderr(text):
        assert main(["rerun", str(src), "nope"]) == 2
    assert "no fine-tuned run 'nope'" in text.getvalue()


def test_store_location_env_then_claude_local_md_then_cache(tmp_path, monkeypatch):
    from cruijff_kit.analyze.store import default_path

    local = tmp_path / "claude.local.md"
    local.write_text("# mine\n- results_store: ~/stores/r.sqlite\n")
    monkeypatch.setenv("CK_LOCAL_CONFIG", str(local))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CK_RESULTS_STORE", str(tmp_path / "env.sqlite"))
    assert default_path() == tmp_path / "env.sqlite"
    monkeypatch.delenv("CK_RESULTS_STORE")
    assert default_path() == tmp_path / "stores" / "r.sqlite"
    local.write_text("# mine\n")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_path() == tmp_path / "cache" / "cruijff_kit" / "results.sqlite"
