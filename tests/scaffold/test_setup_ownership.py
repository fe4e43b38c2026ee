"""setup_finetune.yaml belongs to the user once written: a hand edit is never silently overwritten."""
import json

import pytest
import yaml

from cruijff_kit.cli import main

from .helpers import make_experiment, snapshot

RUN = "rank8_lr1e-5"


@pytest.fixture
def exp(tmp_path, monkeypatch):
    monkeypatch.setenv("CK_LOCAL_CONFIG", str(tmp_path / "claude.local.md"))
    (tmp_path / "claude.local.md").write_text("- slurm_partition: debug\n")
    e = make_experiment(tmp_path)
    assert main(["scaffold", str(e)]) == 0
    return e


def _edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_hand_edit_is_kept_and_finetune_yaml_follows_it(exp, capsys):
    setup = exp / RUN / "setup_finetune.yaml"
    _edit(setup, "batch_size: 4", "batch_size: 2")
    edited = setup.read_bytes()
    capsys.readouterr()
    assert main(["scaffold", str(exp), "--only", "torchtune"]) == 0
    captured = capsys.readouterr()
    assert "kept hand-edited setup_finetune.yaml (batch_size)" in captured.err
    assert setup.read_bytes() == edited
    assert yaml.safe_load((exp / RUN / "finetune.yaml").read_text())["batch_size"] == 2
    # the other runs are untouched and still follow the plan
    assert yaml.safe_load((exp / "rank16_lr1e-5" / "finetune.yaml").read_text())["batch_size"] == 4
    assert main(["scaffold", str(exp)]) == 0  # and again: stable
    assert setup.read_bytes() == edited


def test_plan_change_updates_untouched_files(exp):
    summary = exp / "experiment_summary.md"
    _edit(summary, "- **Epochs:** 1", "- **Epochs:** 1\n- **Seed:** 7")
    assert main(["scaffold", str(exp)]) == 0
    for run in (RUN, "rank64_lr5e-5"):
        assert yaml.safe_load((exp / run / "setup_finetune.yaml").read_text())["seed"] == 7
        assert yaml.safe_load((exp / run / "finetune.yaml").read_text())["seed"] == 7


def test_hand_edit_and_plan_change_is_refused_without_force(exp, capsys):
    setup = exp / RUN / "setup_finetune.yaml"
    _edit(setup, "batch_size: 4", "batch_size: 2")
    _edit(exp / "experiment_summary.md", "- **Epochs:** 1", "- **Epochs:** 1\n- **Seed:** 7")
    before = snapshot(exp)
    capsys.readouterr()
    assert main(["scaffold", str(exp)]) == 2
    err = capsys.readouterr().err
    assert f"{setup}: batch_size: was edited by hand and the plan changed too" in err
    assert "batch_size, seed" in err and "--force" in err
    assert snapshot(exp) == before  # no run was scaffolded, not even the untouched ones
    assert main(["scaffold", str(exp), "--force", "--json"]) == 0
    s = yaml.safe_load(setup.read_text())
    assert (s["batch_size"], s["seed"]) == (4, 7)


def test_file_without_fingerprint_that_differs_is_refused(exp, capsys):
    setup = exp / RUN / "setup_finetune.yaml"
    text = "\n".join(l for l in setup.read_text().splitlines() if not l.startswith("# ck-fingerprint"))
    setup.write_text(text.replace("lora_dropout: 0.0", "lora_dropout: 0.2") + "\n")
    assert main(["scaffold", str(exp), "--only", "torchtune", "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert not report["ok"] and not report["written"]
    assert "lora_dropout" in report["torchtune"][0]["error"]
    assert "lora_dropout: 0.2" in setup.read_text()


def test_broken_hand_edit_is_reported_with_its_line(exp, capsys):
    setup = exp / RUN / "setup_finetune.yaml"
    _edit(setup, "lora_dropout: 0.0", "lora_dropout: 2.0")
    line = next(i for i, l in enumerate(setup.read_text().splitlines(), 1) if l.startswith("lora_dropout"))
    before = snapshot(exp)
    assert main(["scaffold", str(exp)]) == 2
    assert f"{setup}:{line}: lora_dropout: must be < 1" in capsys.readouterr().err
    assert snapshot(exp) == before


def test_generated_files_follow_the_umask(tmp_path, monkeypatch):
    import os

    monkeypatch.setenv("CK_LOCAL_CONFIG", str(tmp_path / "claude.local.md"))
    (tmp_path / "claude.local.md").write_text("- slurm_partition: debug\n")
    e = make_experiment(tmp_path)
    old = os.umask(0o022)
    try:
        assert main(["scaffold", str(e)]) == 0
        assert main(["design", str(tmp_path / "d"), "--model", "m=/m", "--dataset", "/d.json"]) == 0
    finally:
        os.umask(old)
    for f in (e / RUN / "setup_finetune.yaml", e / RUN / "finetune.yaml", e / RUN / "eval" / "epoch0.slurm",
              tmp_path / "d" / "experiment_summary.md"):
        assert f.stat().st_mode & 0o777 == 0o644, f
