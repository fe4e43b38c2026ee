"""scaffold-experiment on the canonical sweep (ranks 8,16,32,64 x lr 1e-5,5e-5 + control)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cruijff_kit.cli import main

from .helpers import make_experiment, snapshot

@pytest.fixture
def exp(tmp_path, monkeypatch):
    monkeypatch.setenv("CK_LOCAL_CONFIG", str(tmp_path / "claude.local.md"))
    (tmp_path / "claude.local.md").write_text("- slurm_partition: debug\n- slurm_mem: 8G\n")
    return make_experiment(tmp_path)


def test_canonical_sweep_scaffolds_eight_runs_and_control(exp, capsys):
    assert main(["scaffold", str(exp)]) == 0
    dirs = sorted(p.name for p in exp.iterdir() if p.is_dir() and p.name != "tasks")
    expected = sorted([f"rank{r}_lr{lr}" for r in (8, 16, 32, 64) for lr in ("1e-5", "5e-5")] + ["base"])
    assert dirs == expected
    for d in [x for x in expected if x != "base"]:
        run = exp / d
        for f in ("setup_finetune.yaml", "finetune.yaml", "finetune.slurm", "eval/epoch0.slurm"):
            assert (run / f).is_file(), f"{d}/{f}"
        assert (run / "eval" / "logs").is_dir()
        cfg = yaml.safe_load((run / "finetune.yaml").read_text())
        rank, lr = d.split("_")
        assert cfg["model"]["lora_rank"] == int(rank[4:])
        assert cfg["optimizer"]["lr"] == float(lr[2:])
        slurm = (run / "finetune.slurm").read_text()
        assert "#SBATCH --partition=debug" in slurm and "#SBATCH --mem=8G" in slurm
        subprocess.run(["bash", "-n", str(run / "finetune.slurm")], check=True)
        subprocess.run(["bash", "-n", str(run / "eval" / "epoch0.slurm")], check=True)
    assert not (exp / "base" / "finetune.yaml").exists()
    base_eval = (exp / "base" / "eval" / "base.slurm").read_text()
    # evaluated through ck's launcher in the Llama-3 training format (was: plain `--model hf/$MODEL_DIR`,
    # which applied the checkpoint's own template: a date block and a second BOS training never saw)
    assert '--model-dir "$MODEL_DIR" --prompt-format llama3' in base_eval
    assert "MODEL_DIR=/models/Llama-3.2-1B-Instruct" in base_eval
    ep0 = (exp / "rank8_lr1e-5" / "eval" / "epoch0.slurm").read_text()
    assert str(exp / "rank8_lr1e-5" / "checkpoints" / "epoch_0") in ep0 and "--log-dir logs" in ep0
    for log in ("scaffold-experiment.log", "scaffold-torchtune.log", "scaffold-inspect.log"):
        text = (exp / log).read_text()
        assert text.startswith("[") and "\nResult: " in text


def test_rerun_is_idempotent_and_reports_changes(exp, capsys):
    assert main(["scaffold", str(exp)]) == 0
    before = {p: b for p, b in snapshot(exp).items() if not p.name.endswith(".log")}
    mtimes = {p: p.stat().st_mtime_ns for p in before}
    capsys.readouterr()
    assert main(["scaffold", str(exp), "--json"]) == 0
    import json
    report = json.loads(capsys.readouterr().out)
    assert {f["status"] for r in report["torchtune"] + report["inspect"] for f in r["files"]} == {"unchanged"}
    assert all(p.stat().st_mtime_ns == mtimes[p] for p in before)
    # a hand edit of one run's setup is regenerated into its finetune.yaml only
    setup = exp / "rank8_lr1e-5" / "setup_finetune.yaml"
    setup.write_text(setup.read_text().replace("batch_size: 4", "batch_size: 2"))
    assert subprocess.run([sys.executable, str(Path(__file__).parents[2] / "tools/torchtune/setup_finetune.py")],
                          cwd=setup.parent, capture_output=True, text=True).returncode == 0
    assert yaml.safe_load((setup.parent / "finetune.yaml").read_text())["batch_size"] == 2


def test_dry_run_writes_nothing(exp, capsys):
    before = snapshot(exp)
    assert main(["scaffold", str(exp), "--dry-run", "--json"]) == 0
    assert snapshot(exp) == before
    assert "would create" in capsys.readouterr().out


def test_one_bad_task_writes_nothing_and_names_every_problem(exp, capsys):
    # Was: the other runs were scaffolded anyway (exit 2 after writing), and `ck run` then ran the
    # partial plan (issue 12). Now every input is checked before the first file is written.
    text = (exp / "experiment_summary.md").read_text()
    text = text.replace("| capitalization | tasks/capitalization/inspect_task.py | 0 |",
                        "| capitalization | tasks/capitalization/inspect_task.py | 0 |\n| missing | tasks/nope.py | 0 |")
    (exp / "experiment_summary.md").write_text(text)
    before = snapshot(exp)
    assert main(["scaffold", str(exp)]) == 2
    err = capsys.readouterr().err
    assert "nope.py" in err and "Nothing written" in err
    assert err.count("nope.py") >= 9  # every run that would evaluate it is named
    assert snapshot(exp) == before


def test_scaffold_only_workers(exp):
    assert main(["scaffold", str(exp), "--only", "torchtune"]) == 0
    assert (exp / "rank8_lr1e-5" / "finetune.yaml").exists() and not (exp / "rank8_lr1e-5" / "eval").exists()
    assert main(["scaffold", str(exp), "--only", "inspect"]) == 0
    assert (exp / "rank8_lr1e-5" / "eval" / "epoch0.slurm").exists()


def test_cli_start_is_light():
    code = ("import sys, cruijff_kit.cli as c; c.build_parser(); "
            "heavy = [m for m in ('torch', 'torchtune', 'inspect_ai', 'transformers', 'wandb') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ})
    assert r.returncode == 0, r.stdout + r.stderr
