"""Eval-only runs, the plan's Temperature / Scorer and `@all` epochs, as scaffold writes them."""
import json
from pathlib import Path

import pytest

from cruijff_kit.cli import main
from cruijff_kit.errors import CkError
from cruijff_kit.experiment.parse import parse_summary_text
from cruijff_kit.experiment.render import render_summary

ROOT = Path(__file__).resolve().parents[2]
BLUEPRINT_TASK = ROOT / "tools/cruijff_kit/blueprints/capitalization/inspect_task.py"
CANON = (Path(__file__).parents[1] / "experiment" / "canonical.md").read_text()
CONTROL_ROW = "| Llama-3.2-1B-Instruct_base | Llama-3.2-1B-Instruct | - | - | - | Control | N/A |"


def plan(exp: Path, *, rows: str = "", checkpoint_col: bool = False, config: str = "") -> Path:
    text = CANON.replace("/scratch/me/cap_4L_lora_lr_sweep", str(exp)).replace(
        "tasks/capitalization/inspect_task.py", str(BLUEPRINT_TASK))
    if checkpoint_col:
        text = text.replace("| Type | Est. Time |\n|---|---|---|---|---|---|---|",
                            "| Type | Est. Time | Checkpoint |\n|---|---|---|---|---|---|---|---|")
        text = text.replace("| Fine-tuned | ~10s |", "| Fine-tuned | ~10s | - |").replace(
            "| Control | N/A |", "| Control | N/A | - |")
        text = text.replace(CONTROL_ROW + " - |", CONTROL_ROW + " - |\n" + rows)
    text = text.replace("- **Validation during training:** false", "- **Validation during training:** false\n" + config)
    exp.mkdir(parents=True, exist_ok=True)
    (exp / "experiment_summary.md").write_text(text)
    return exp / "experiment_summary.md"


@pytest.fixture
def local(tmp_path, monkeypatch):
    monkeypatch.setenv("CK_LOCAL_CONFIG", str(tmp_path / "claude.local.md"))
    (tmp_path / "claude.local.md").write_text("- slurm_partition: debug\n")


def hf_dir(path: Path) -> Path:
    """An HF checkpoint directory as torchtune writes it (config.json, index, shard)."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
                                                  "vocab_size": 128256, "bos_token_id": 128000}))
    (path / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": 8}, "weight_map": {"lm_head.weight": "model-00001-of-00001.safetensors"}}))
    (path / "model-00001-of-00001.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    return path


def adapter_dir(path: Path) -> Path:
    """A torchtune adapter-only epoch directory (adapter_model.pt + PEFT adapter_config.json)."""
    import torch

    path.mkdir(parents=True)
    torch.save({"layers.0.attn.q_proj.lora_a.weight": torch.zeros(4, 8)}, path / "adapter_model.pt")
    (path / "adapter_config.json").write_text(json.dumps(
        {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], "peft_type": "LORA"}))
    return path


def test_eval_only_row_round_trips_and_names_its_directory(tmp_path):
    summary = plan(tmp_path / "e", checkpoint_col=True,
                   rows="| other_ft | Llama-3.2-1B-Instruct | - | - | - | Eval-only | N/A | /ckpt/epoch_2 |")
    exp = parse_summary_text(summary.read_text())
    run = exp.runs[-1]
    assert run.eval_only and dict(run.extra) == {"Checkpoint": "/ckpt/epoch_2"}
    assert exp.eval_only_runs == (run,) and run not in exp.control_runs
    assert parse_summary_text(render_summary(exp)) == exp
    assert not [w for w in exp.warnings if "Checkpoint" in w]  # a column ck uses, not a note
    from cruijff_kit.experiment.naming import run_directories

    assert run_directories(exp)["other_ft"] == "other_ft"


def test_checkpoint_on_a_fine_tuned_run_is_an_error_with_its_line(tmp_path):
    summary = plan(tmp_path / "e", checkpoint_col=True)
    text = summary.read_text().replace("| Fine-tuned | ~10s | - |", "| Fine-tuned | ~10s | /ckpt |")
    with pytest.raises(CkError) as info:
        parse_summary_text(text, "s.md")
    err = info.value
    assert err.field == "Checkpoint" and err.line == text.splitlines().index(
        next(l for l in text.splitlines() if "/ckpt |" in l)) + 1
    assert "only Eval-only runs" in str(err)


def test_eval_only_scaffolds_evals_of_its_checkpoint_only(tmp_path, local):
    ckpt = hf_dir(tmp_path / "elsewhere" / "epoch_2")
    adapter = adapter_dir(tmp_path / "adapters" / "epoch_0")
    rows = (f"| other_ft | Llama-3.2-1B-Instruct | - | - | - | Eval-only | N/A | {ckpt} |\n"
            f"| other_adapter | Llama-3.2-1B-Instruct | - | - | - | Eval-only | N/A | {adapter} |\n"
            "| base_again | Llama-3.2-1B-Instruct | - | - | - | Eval-only | N/A | - |")
    summary = plan(tmp_path / "e", rows=rows, checkpoint_col=True)
    assert main(["scaffold", str(summary.parent)]) == 0
    exp = summary.parent
    for run in ("other_ft", "other_adapter", "base_again"):
        assert not (exp / run / "finetune.slurm").exists() and not (exp / run / "setup_finetune.yaml").exists()
        assert [p.name for p in (exp / run / "eval").glob("*.slurm")] == ["base.slurm"]
    ft = (exp / "other_ft" / "eval" / "base.slurm").read_text()
    assert f"MODEL_DIR={ckpt}\n" in ft and "--base-model" not in ft
    ad = (exp / "other_adapter" / "eval" / "base.slurm").read_text()
    assert f"MODEL_DIR={adapter}\n" in ad and "--base-model /models/Llama-3.2-1B-Instruct" in ad
    again = (exp / "base_again" / "eval" / "base.slurm").read_text()
    assert "MODEL_DIR=/models/Llama-3.2-1B-Instruct\n" in again
    from cruijff_kit.run.plan import plan_experiment

    jobs = {j.key: j for j in plan_experiment(exp).jobs}
    assert jobs["other_ft/eval/base"].depends_on is None


def test_eval_only_checkpoint_that_is_not_a_model_fails_scaffold(tmp_path, local, capsys):
    (tmp_path / "notes").mkdir()
    rows = f"| other_ft | Llama-3.2-1B-Instruct | - | - | - | Eval-only | N/A | {tmp_path / 'notes'} |"
    summary = plan(tmp_path / "e", rows=rows, checkpoint_col=True)
    assert main(["scaffold", str(summary.parent)]) != 0
    err = capsys.readouterr()
    assert "neither a Hugging Face model directory" in err.out + err.err
    assert not (summary.parent / "other_ft").exists()  # nothing written


def test_temperature_and_scorer_reach_the_eval_script(tmp_path, local, capsys):
    summary = plan(tmp_path / "e", config="- **Temperature:** 0.7\n- **Scorer:** both")
    assert main(["scaffold", str(summary.parent)]) == 0
    script = (summary.parent / "base" / "eval" / "base.slurm").read_text()
    assert "--temperature 0.7" in script and '"scorer": "both"' in script
    assert "Scorer" not in capsys.readouterr().err


def test_a_plain_scorer_line_is_read_and_named_with_its_line(tmp_path, local, capsys):
    summary = plan(tmp_path / "e", config="- Scorer: match")
    assert main(["scaffold", str(summary.parent)]) == 2
    line = summary.read_text().splitlines().index("- Scorer: match") + 1
    assert f"experiment_summary.md:{line}: Scorer" in capsys.readouterr().err


@pytest.mark.parametrize("written", ["exact match", "Exact Match", "exact_match", "EXACT"])
def test_the_original_templates_scorer_words_name_the_tasks_scorer(tmp_path, local, capsys, written):
    summary = plan(tmp_path / "e", config=f"- **Scorer:** {written}")
    assert main(["scaffold", str(summary.parent)]) == 0, capsys.readouterr().err
    assert '"scorer": "exact"' in (summary.parent / "base" / "eval" / "base.slurm").read_text()


def test_temperature_zero_is_greedy(tmp_path, local):
    summary = plan(tmp_path / "e", config="- **Temperature:** 0")
    assert main(["scaffold", str(summary.parent)]) == 0
    assert "--temperature" not in (summary.parent / "base" / "eval" / "base.slurm").read_text()


def test_a_scorer_the_task_does_not_offer_is_an_error_with_its_line(tmp_path, local, capsys):
    summary = plan(tmp_path / "e", config="- **Scorer:** match")
    assert main(["scaffold", str(summary.parent)]) != 0
    out = capsys.readouterr()
    line = summary.read_text().splitlines().index("- **Scorer:** match") + 1
    assert f"experiment_summary.md:{line}" in out.out + out.err and "exact, includes, both" in out.out + out.err


def test_a_task_without_a_scorer_parameter_gets_a_named_warning(tmp_path, local, capsys):
    task = tmp_path / "t.py"
    task.write_text('from inspect_ai import task\n\n@task\ndef cap(data_path: str, split: str = "test"):\n    ...\n')
    summary = plan(tmp_path / "e", config="- **Scorer:** includes")
    summary.write_text(summary.read_text().replace(str(BLUEPRINT_TASK), str(task)))
    assert main(["scaffold", str(summary.parent)]) == 0
    assert "Scorer 'includes' is not applied to task 'capitalization'" in capsys.readouterr().err


def test_at_all_gives_one_evaluation_per_epoch(tmp_path, local):
    exp = tmp_path / "e"
    assert main(["design", str(exp), "--model", "Llama-3.2-1B-Instruct=/models/Llama-3.2-1B-Instruct",
                 "--dataset", "/data/words.json", "--ranks", "8", "--epochs", "3", "--gpus", "0",
                 "--task", f"capitalization={BLUEPRINT_TASK}@all"]) == 0
    assert main(["scaffold", str(exp)]) == 0
    [ft] = [p for p in exp.iterdir() if (p / "finetune.slurm").exists()]
    assert sorted(p.name for p in (ft / "eval").glob("*.slurm")) == [
        f"epoch{e}.slurm" for e in (0, 1, 2)]
    assert "Epochs are 0-based" in (exp / "experiment_summary.md").read_text()  # where the user edits them


def test_spec_and_cli_eval_only_runs(tmp_path, local):
    ckpt = hf_dir(tmp_path / "theirs" / "epoch_2")
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"""name: e
models:
  Llama-3.2-1B-Instruct: /models/Llama-3.2-1B-Instruct
dataset: /data/words.json
gpus: 0
controls: false
eval_only:
  theirs: {{model: Llama-3.2-1B-Instruct, checkpoint: theirs/epoch_2}}
  plain: {{model: Llama-3.2-1B-Instruct}}
tasks:
  - {{task: capitalization, script: {BLUEPRINT_TASK}, epochs: all}}
""")
    assert main(["design", str(tmp_path / "e"), "--spec", str(spec)]) == 0
    exp = parse_summary_text((tmp_path / "e" / "experiment_summary.md").read_text())
    theirs, plain = exp.eval_only_runs
    assert dict(theirs.extra) == {"Checkpoint": str(ckpt)} and plain.extra == ()  # relative to the spec file
    assert main(["design", str(tmp_path / "c"), "--model", "Llama-3.2-1B-Instruct=/models/Llama-3.2-1B-Instruct",
                 "--dataset", "/data/words.json", "--gpus", "0", "--eval-only", f"theirs=Llama-3.2-1B-Instruct@{ckpt}",
                 "--task", f"capitalization={BLUEPRINT_TASK}@0"]) == 0
    cli = parse_summary_text((tmp_path / "c" / "experiment_summary.md").read_text())
    assert [dict(r.extra) for r in cli.eval_only_runs] == [{"Checkpoint": str(ckpt)}]
    # evaluation only: no fine-tuned run nobody asked for (a default rank8_lr5e-5 used to appear)
    assert cli.finetuned_runs == () and [r.name for r in cli.control_runs] == ["Llama-3.2-1B-Instruct_base"]
    assert [r.name for r in exp.runs if r.finetuned] == []  # the spec file without a grid, too
    assert main(["scaffold", str(tmp_path / "c")]) == 0
    assert f"MODEL_DIR={ckpt}\n" in (tmp_path / "c" / "theirs" / "eval" / "base.slurm").read_text()
    with pytest.raises(CkError, match="not under models"):
        from cruijff_kit.experiment.eval_only import runs_from_spec
        runs_from_spec({"x": {"model": "nope"}}, "spec.yaml", 3, ["Llama-3.2-1B-Instruct"])


def test_eval_only_with_a_grid_asked_for_trains_it(tmp_path, local):
    ckpt = tmp_path / "theirs"
    ckpt.mkdir()
    base = ["--model", "Llama-3.2-1B-Instruct=/models/Llama-3.2-1B-Instruct", "--dataset", "/data/words.json",
            "--eval-only", f"theirs=Llama-3.2-1B-Instruct@{ckpt}", "--task", f"capitalization={BLUEPRINT_TASK}@0"]
    for i, extra in enumerate((["--ranks", "8,16"], ["--vary", "seed=1,2"], ["--set", "LoRA rank=4"])):
        assert main(["design", str(tmp_path / f"g{i}"), *base, *extra]) == 0
        exp = parse_summary_text((tmp_path / f"g{i}" / "experiment_summary.md").read_text())
        assert len(exp.finetuned_runs) in (1, 2) and len(exp.eval_only_runs) == 1


def _with_tasks(summary: Path, rows: list[str]) -> None:
    """Replace the plan's Evaluation table's rows with these (Task | Script | Epochs | Split)."""
    lines = summary.read_text().splitlines()
    head = lines.index("| Task | Script | Epochs | Split |") if "| Task | Script | Epochs | Split |" in lines \
        else lines.index("| Task | Script | Epochs |")
    end = head + 2
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    lines[head:end] = ["| Task | Script | Epochs | Split |", "|---|---|---|---|", *rows]
    summary.write_text("\n".join(lines) + "\n")


def test_one_script_per_checkpoint_and_per_task_fingerprints(tmp_path, local, capsys):
    from cruijff_kit.state.artifacts import eval_fingerprint, script_tasks
    from cruijff_kit.run.plan import plan_experiment

    summary = plan(tmp_path / "e")
    exp = summary.parent
    _with_tasks(summary, [f"| cap_test | {BLUEPRINT_TASK} | 0 | test |",
                          f"| cap_val | {BLUEPRINT_TASK} | 0 | validation |"])
    assert main(["scaffold", str(exp)]) == 0
    run = next(p for p in exp.iterdir() if (p / "finetune.slurm").exists())
    script = run / "eval" / "epoch0.slurm"
    assert sorted(p.name for p in (run / "eval").glob("*.slurm")) == ["epoch0.slurm"]
    assert [t.name for t in script_tasks(script)] == ["cap_test", "cap_val"]
    job = next(j for j in plan_experiment(exp).evals if j.run == run.name)
    assert job.tasks == ("cap_test", "cap_val") and job.label == "eval epoch 0 (2 tasks)"
    assert [e.task for e in job.expected()] == ["cap_test", "cap_val"]
    fps = {t: eval_fingerprint(script, t) for t in job.tasks}
    assert fps["cap_test"] != fps["cap_val"]

    # a third task: the other two are the same evaluations (their fingerprints do not move)
    _with_tasks(summary, [f"| cap_test | {BLUEPRINT_TASK} | 0 | test |",
                          f"| cap_val | {BLUEPRINT_TASK} | 0 | validation |",
                          f"| cap_train | {BLUEPRINT_TASK} | 0 | train |"])
    assert main(["scaffold", str(exp)]) == 0
    assert {t: eval_fingerprint(script, t) for t in fps} == fps
    # one task's split changed: only its fingerprint moves
    _with_tasks(summary, [f"| cap_test | {BLUEPRINT_TASK} | 0 | test |",
                          f"| cap_val | {BLUEPRINT_TASK} | 0 | train |",
                          f"| cap_train | {BLUEPRINT_TASK} | 0 | train |"])
    three = {t: eval_fingerprint(script, t) for t in ("cap_test", "cap_val", "cap_train")}
    assert main(["scaffold", str(exp)]) == 0
    now = {t: eval_fingerprint(script, t) for t in three}
    assert now["cap_test"] == three["cap_test"] and now["cap_train"] == three["cap_train"]
    assert now["cap_val"] != three["cap_val"]
    # a line every task shares (max tokens): every task is a new evaluation
    summary.write_text(summary.read_text().replace("- **Validation during training:** false",
                                                   "- **Validation during training:** false\n- **Eval max tokens:** 7"))
    assert main(["scaffold", str(exp)]) == 0
    assert all(eval_fingerprint(script, t) != now[t] for t in now)


def test_scaffold_replaces_the_per_task_scripts_it_generated(tmp_path, local, capsys):
    """An experiment scaffolded before one script per checkpoint: its generated per-task scripts
    go (dry run: only reported), a script someone wrote by hand stays."""
    summary = plan(tmp_path / "e")
    exp = summary.parent
    assert main(["scaffold", str(exp)]) == 0
    run = next(p for p in exp.iterdir() if (p / "finetune.slurm").exists())
    generated = (run / "eval" / "epoch0.slurm").read_text()
    (run / "eval" / "capitalization_epoch0.slurm").write_text(generated)  # as the old scaffold wrote it
    (run / "eval" / "mine_epoch0.slurm").write_text("#!/bin/bash\necho by hand\n")
    capsys.readouterr()
    assert main(["scaffold", str(exp), "--dry-run", "--json"]) == 0
    files = [f for r in json.loads(capsys.readouterr().out)["inspect"] for f in r["files"]]
    assert {"path": str(run / "eval" / "capitalization_epoch0.slurm"), "status": "would remove"} in files
    assert (run / "eval" / "capitalization_epoch0.slurm").exists()
    assert main(["scaffold", str(exp)]) == 0
    assert sorted(p.name for p in (run / "eval").glob("*.slurm")) == ["epoch0.slurm", "mine_epoch0.slurm"]
