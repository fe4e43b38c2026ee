"""Bad input through the real CLI: a clear message naming file, line and field; exit 2; nothing written."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cruijff_kit.cli import main

from .helpers import make_experiment, snapshot

SETUP_FIX = {
    "lora_rank: 8": ("lora_rank: eight", "lora_rank", "whole number"),
    "learning_rate: 1.0e-05": ("learning_rate: -1", "learning_rate", "> 0"),
    "dataset_format: json": ("dataset_format: csv", "dataset_format", "one of"),
    "epochs: 1": ("epochs: 1\nepoch: 2", "epoch", "unknown setting"),
    "batch_size: 4": ("batch_size: [4", None, "invalid YAML"),
}


@pytest.fixture
def exp(tmp_path, monkeypatch):
    monkeypatch.setenv("CK_LOCAL_CONFIG", str(tmp_path / "claude.local.md"))
    (tmp_path / "claude.local.md").write_text("- slurm_partition: debug\n")
    return make_experiment(tmp_path)


@pytest.mark.parametrize("old", list(SETUP_FIX))
def test_bad_setup_finetune_yaml(exp, old):
    assert main(["scaffold", str(exp), "--only", "torchtune"]) == 0
    run = exp / "rank8_lr1e-5"
    new, field, needle = SETUP_FIX[old]
    text = (run / "setup_finetune.yaml").read_text()
    assert old in text
    (run / "setup_finetune.yaml").write_text(text.replace(old, new))
    (run / "finetune.yaml").unlink()
    script = Path(__file__).parents[2] / "tools" / "torchtune" / "setup_finetune.py"
    r = subprocess.run([sys.executable, str(script)], cwd=run, capture_output=True, text=True)
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr
    if field:  # the line of the offending key
        line = next(i for i, l in enumerate(text.replace(old, new).splitlines(), 1) if l.startswith(field + ":"))
        assert f"setup_finetune.yaml:{line}: {field}:" in r.stderr
    else:  # YAML syntax: the line where the parser noticed
        assert re.search(r"setup_finetune\.yaml:\d+: invalid YAML", r.stderr)
    assert not (run / "finetune.yaml").exists()


@pytest.mark.parametrize("content,field,line", [
    ("- slurm_cpus: many\n", "slurm_cpus", 1),
    ("x\n- slurm_time: soon\n", "slurm_time", 2),
    ("- slurm_mem: lots\n", "slurm_mem", 1),
    ("- slurm_partitoin: gpu\n", "slurm_partitoin", 1),
])
def test_bad_claude_local_md(exp, content, field, line, capsys):
    cfg = exp.parent / "claude.local.md"
    cfg.write_text(content)
    before = snapshot(exp)
    assert main(["scaffold", str(exp)]) == 2
    err = capsys.readouterr().err
    assert f"{cfg}:{line}: {field}:" in err
    assert snapshot(exp) == before


def test_malformed_summary_exits_2_with_file_line_and_writes_nothing(exp, capsys):
    summary = exp / "experiment_summary.md"
    summary.write_text(summary.read_text().replace("| 16 | 1e-5 |", "| sixteen | 1e-5 |"))
    before = snapshot(exp)
    assert main(["scaffold", str(exp)]) == 2
    err = capsys.readouterr().err
    assert f"{summary}:24: LoRA Rank: expected a whole number" in err
    assert snapshot(exp) == before


@pytest.mark.parametrize("argv,needle", [
    (["scaffold", "/no/such/dir"], "not found"),
    (["design", "{tmp}/new", "--dataset", "d.json"], "missing --model"),
    (["design", "{tmp}/new", "--model", "tiny", "--dataset", "d.json"], "NAME=VALUE"),
    (["design", "{tmp}/new", "--model", "m=/x", "--dataset", "d.json", "--task", "cap=t.py@zero"], "epochs"),
    (["design", "{tmp}/new", "--model", "m=/x", "--dataset", "d.json", "--name", "a b"], "unsafe"),
    (["design", "{tmp}/new", "--spec", "{tmp}/missing.yaml"], "not found"),
])
def test_bad_cli_args(tmp_path, argv, needle, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_bad_cli_number_is_argparse_error(tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["design", str(tmp_path / "x"), "--ranks", "8,sixteen"])
    assert info.value.code == 2


def test_design_refuses_to_overwrite(tmp_path, capsys):
    args = ["design", str(tmp_path / "e"), "--model", "m=/x", "--dataset", "/d.json"]
    assert main(args) == 0
    before = (tmp_path / "e" / "experiment_summary.md").read_bytes()
    assert main(args + ["--ranks", "4"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "e" / "experiment_summary.md").read_bytes() == before


def test_design_spec_bad_yaml_names_line(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: x\nmodels: {m: /x}\ndataset: [\n")
    assert main(["design", str(tmp_path / "e"), "--spec", str(spec)]) == 2
    assert f"{spec}:" in capsys.readouterr().err
