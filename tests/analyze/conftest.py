"""A small real experiment: `ck design` + `ck scaffold`, the tiny model, and real inspect-ai evals.

Runs: rank8_lr1e-4 and rank16_lr1e-3 are evaluated, rank8_lr1e-3 is left without any log (a
missing run), rank16_lr1e-4 has only a corrupt .eval file, base is the control.
To get distinct, known accuracies from a model that answers at random, each run is evaluated on
its own copy of the data in which k of the 4 test targets are "" (inspect's includes() counts ""
as found): accuracy k/4. The training-loss files are written directly in torchtune DiskLogger's
format where setup_finetune.yaml's output_dir says (running torchtune would make this slow).
"""
import json
import os
from pathlib import Path

import pytest

TASK = Path(__file__).resolve().parents[2] / "tools/cruijff_kit/blueprints/capitalization/inspect_task.py"
EVALUATED = {"rank8_lr1e-4": 1, "rank16_lr0.001": 3, "base": 0}  # run dir -> targets blanked (= accuracy * 4)
LOSSES = {"rank8_lr1e-4": [3.0, 2.5, 2.25], "rank16_lr0.001": [3.1, 1.9],
          "rank8_lr0.001": [2.8, 2.7], "rank16_lr1e-4": [2.9, 2.6]}


def _scaffold(root: Path, exp: Path) -> None:
    from cruijff_kit.cli import main

    local = root / "claude.local.md"
    local.write_text(f"# test\n- venv: {os.sys.prefix}\n")
    old = os.environ.get("CK_LOCAL_CONFIG")
    os.environ["CK_LOCAL_CONFIG"] = str(local)
    try:
        assert main(["scaffold", str(exp)]) == 0
    finally:
        if old is None:
            os.environ.pop("CK_LOCAL_CONFIG", None)
        else:
            os.environ["CK_LOCAL_CONFIG"] = old


def _output_dir(exp: Path, run_dir: str) -> Path:
    import yaml

    return Path(yaml.safe_load((exp / run_dir / "setup_finetune.yaml").read_text())["output_dir"])


@pytest.fixture(scope="session")
def experiment(tmp_path_factory, tiny_model):
    import inspect_ai

    from tests.shared import quick_hf_batching

    from cruijff_kit.blueprints.capitalization.generate import generate
    from cruijff_kit.blueprints.capitalization.inspect_task import capitalization
    from cruijff_kit.cli import main

    quick_hf_batching()  # tests/shared.py: no idle seconds per in-process evaluation
    root = tmp_path_factory.mktemp("analyze")
    model = tiny_model
    data = generate(root / "data.json", n=40, seed=0)
    exp = root / "exp"
    assert main(["design", str(exp), "--model", f"tiny={model}", "--dataset", str(data), "--ranks", "8,16",
                 "--lrs", "1e-4,1e-3", "--task", f"capitalization={TASK}@0", "--gpus", "0"]) == 0
    _scaffold(root, exp)

    import yaml

    for run_dir, losses in LOSSES.items():
        out = Path(yaml.safe_load((exp / run_dir / "setup_finetune.yaml").read_text())["output_dir"])
        (out / "logs").mkdir(parents=True, exist_ok=True)
        lines = [f"Step {i + 1} | loss:{v} lr:0.0001 tokens_per_second_per_gpu:100.0 " for i, v in enumerate(losses)]
        # a retried job starts a new file: its step 2 replaces the first attempt's
        (out / "logs" / "log_1000.txt").write_text(f"Step 1 | loss:9.0 lr:0.0001 \nStep 2 | loss:9.0 \n")
        (out / "logs" / "log_2000.txt").write_text("\n".join(lines) + "\n")
        (out / "epoch_0").mkdir(exist_ok=True)  # a finished run has its checkpoint (the only epoch)

    rows = json.loads(data.read_text())
    for run_dir, blanks in EVALUATED.items():
        run_data = root / f"data_{run_dir}.json"
        test = [dict(r, output="" if i < blanks else r["output"]) for i, r in enumerate(rows["test"])]
        run_data.write_text(json.dumps({**rows, "test": test}))
        if run_dir == "base":
            model_dir = model
        else:  # the checkpoint path the eval script uses, so the log names epoch_0
            out = Path(yaml.safe_load((exp / run_dir / "setup_finetune.yaml").read_text())["output_dir"])
            model_dir = out / "epoch_0"
            model_dir.rmdir()
            model_dir.symlink_to(model, target_is_directory=True)
        inspect_ai.eval(capitalization(data_path=str(run_data), scorer="includes"), model=f"hf/{model_dir}",
                        model_args={"do_sample": False}, max_tokens=4, limit=4,
                        log_dir=str(exp / run_dir / "eval" / "logs"), display="none")
    corrupt = exp / "rank16_lr1e-4" / "eval" / "logs" / "2026-01-01T00-00-00_capitalization_broken.eval"
    corrupt.parent.mkdir(parents=True, exist_ok=True)
    corrupt.write_bytes(b"PK\x03\x04 this is not a complete zip archive")
    return exp


# A 2 x 2 grid (LoRA rank x learning rate), 2 epochs, evaluated at both, 8 held-out words.
# Correct answers per run and epoch (k of 8: k targets blanked, see the module docstring). At
# epoch 0 every run ties with the control (2/8); at epoch 1 rank matters (+0.625) and learning
# rate hardly (+0.125, within noise), with no interaction.
GRID_N = 8
GRID_CORRECT = {"rank8_lr1e-4": (2, 2), "rank8_lr0.001": (2, 3), "rank16_lr1e-4": (2, 7), "rank16_lr0.001": (2, 8)}
GRID_CONTROL = 2
GRID_STEPS = 4  # steps per epoch in the loss logs
GRID_QUESTION = "Does LoRA rank or learning rate matter more for capitalization?"
# validation loss at steps 2, 4 (end of epoch 0), 6, 8 (end of epoch 1): rank8_lr0.001 overfits
GRID_VAL = {"rank8_lr1e-4": (2.0, 1.8, 1.6, 1.5), "rank8_lr0.001": (1.9, 1.2, 1.4, 1.7),
            "rank16_lr1e-4": (2.0, 1.5, 1.2, 1.1), "rank16_lr0.001": (1.5, 0.9, 0.8, 0.7)}


def _grid_data(root: Path) -> Path:
    words = ["amber", "basil", "cedar", "daisy", "ember", "fjord", "gecko", "hazel", "igloo", "jelly",
             "koala", "lemon", "mango", "nylon", "olive", "pecan", "quilt", "raven", "salsa", "tulip"]
    rows = [{"input": w, "output": w.capitalize()} for w in words]
    path = root / "words.json"
    path.write_text(json.dumps({"train": rows[:8], "validation": rows[8:12], "test": rows[12:]}))
    return path


@pytest.fixture(scope="session")
def grid(tmp_path_factory, tiny_model):
    """{"exp": grid experiment, "tie": the same runs evaluated at epoch 0 only (all tie the control)}."""
    import shutil

    import inspect_ai

    from tests.shared import quick_hf_batching

    from cruijff_kit.blueprints.capitalization.inspect_task import capitalization
    from cruijff_kit.cli import main

    quick_hf_batching()  # tests/shared.py: no idle seconds per in-process evaluation
    root = tmp_path_factory.mktemp("grid")
    data = _grid_data(root)
    exp = root / "grid"
    assert main(["design", str(exp), "--model", f"tiny={tiny_model}", "--dataset", str(data), "--ranks", "8,16",
                 "--lrs", "1e-4,1e-3", "--epochs", "2", "--task", f"capitalization={TASK}@0,1", "--gpus", "0",
                 "--question", GRID_QUESTION]) == 0
    _scaffold(root, exp)

    test = json.loads(data.read_text())["test"]

    def evaluate(run_dir: str, model_dir: Path, correct: int, tag: str) -> Path:
        run_data = root / f"data_{run_dir}_{tag}.json"
        rows = [dict(r, output="" if i < correct else r["output"]) for i, r in enumerate(test)]
        run_data.write_text(json.dumps({"test": rows}))
        log_dir = exp / run_dir / "eval" / "logs"
        [log] = inspect_ai.eval(capitalization(data_path=str(run_data), scorer="includes"), model=f"hf/{model_dir}",
                                model_args={"do_sample": False}, max_tokens=4, log_dir=str(log_dir), display="none")
        assert log.status == "success"
        assert log.results.scores[0].metrics["accuracy"].value == correct / GRID_N  # the design reached the log
        return Path(log.location)

    epoch0_logs = {}
    for run_dir, per_epoch in GRID_CORRECT.items():
        out = _output_dir(exp, run_dir)
        (out / "logs").mkdir(parents=True)
        lines = []
        for step in range(1, 2 * GRID_STEPS + 1):
            line = f"Step {step} | loss:{3.0 / step:.4f} lr:0.0001 tokens_per_second_per_gpu:100.0 "
            if step % 2 == 0:
                line += f"\nStep {step} | val_loss:{GRID_VAL[run_dir][step // 2 - 1]} "
            lines.append(line)
        (out / "logs" / "log_1700000000.txt").write_text("\n".join(lines) + "\n")
        for epoch, correct in enumerate(per_epoch):
            (out / f"epoch_{epoch}").symlink_to(tiny_model, target_is_directory=True)
            path = evaluate(run_dir, out / f"epoch_{epoch}", correct, f"e{epoch}")
            if epoch == 0:
                epoch0_logs[run_dir] = path
    control_log = evaluate("base", tiny_model, GRID_CONTROL, "base")

    tie = root / "tie"
    assert main(["design", str(tie), "--model", f"tiny={tiny_model}", "--dataset", str(data), "--ranks", "8,16",
                 "--lrs", "1e-4,1e-3", "--task", f"capitalization={TASK}@0", "--gpus", "0",
                 "--question", "Does fine-tuning beat the base model?"]) == 0
    for run_dir, path in [*epoch0_logs.items(), ("base", control_log)]:
        (tie / run_dir / "eval" / "logs").mkdir(parents=True)
        shutil.copy2(path, tie / run_dir / "eval" / "logs" / path.name)
    return {"exp": exp, "tie": tie}


# Select on validation, report on test: LoRA rank 8 vs 16, 2 epochs, each task evaluated on the
# validation and the test split (8 words each). Correct answers per run and epoch (k of 8):
# validation picks rank16 at epoch_0 (7/8), whose test score is 4/8; on test alone rank16 at
# epoch_1 (8/8) would look best - the optimistic choice the report must not make.
VALSEL_N = 8
VALSEL_VAL = {"rank8": (3, 6), "rank16": (7, 5)}
VALSEL_TEST = {"rank8": (2, 5), "rank16": (4, 8)}


@pytest.fixture(scope="session")
def valsel(tmp_path_factory, tiny_model):
    import inspect_ai

    from tests.shared import quick_hf_batching

    import yaml

    from cruijff_kit.blueprints.capitalization.inspect_task import capitalization
    from cruijff_kit.cli import main

    quick_hf_batching()  # tests/shared.py: no idle seconds per in-process evaluation
    root = tmp_path_factory.mktemp("valsel")
    words = [f"w{c}{d}" for c in "abcdefgh" for d in "xyz"]
    rows = [{"input": w, "output": w.capitalize()} for w in words]
    data = root / "words.json"
    data.write_text(json.dumps({"train": rows[:8], "validation": rows[8:16], "test": rows[16:24]}))
    spec = root / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "valsel", "models": {"tiny": str(tiny_model)}, "dataset": str(data),
        "grid": {"lora_rank": [8, 16]}, "epochs": 2, "gpus": 0,
        "tasks": [{"task": "capitalization", "script": str(TASK), "epochs": "all"},
                  {"task": "capitalization_val", "script": str(TASK), "epochs": "all", "split": "validation"}]}))
    exp = root / "valsel"
    assert main(["design", str(exp), "--spec", str(spec)]) == 0
    _scaffold(root, exp)
    run_dirs = {d.name.split("_")[0]: d.name for d in exp.iterdir() if (d / "finetune.yaml").is_file()}
    assert set(run_dirs) == {"rank8", "rank16"}, run_dirs

    def evaluate(run_dir, model_dir, split, task, correct, epoch):
        split_rows = json.loads(data.read_text())[split]
        rows = [dict(r, output="" if i < correct else r["output"]) for i, r in enumerate(split_rows)]
        path = root / f"data_{run_dir}_{task}_{epoch}.json"
        path.write_text(json.dumps({split: rows}))
        [log] = inspect_ai.eval(capitalization(data_path=str(path), split=split, scorer="includes"),
                                model=f"hf/{model_dir}", model_args={"do_sample": False}, max_tokens=4,
                                log_dir=str(exp / run_dir / "eval" / "logs"), display="none",
                                metadata={"ck_task": task, "ck_epoch": "base" if epoch is None else str(epoch)})
        assert log.results.scores[0].metrics["accuracy"].value == correct / VALSEL_N

    for name, run_dir in run_dirs.items():
        out = _output_dir(exp, run_dir)
        out.mkdir(parents=True, exist_ok=True)
        for epoch in (0, 1):
            (out / f"epoch_{epoch}").symlink_to(tiny_model, target_is_directory=True)
            evaluate(run_dir, out / f"epoch_{epoch}", "validation", "capitalization_val", VALSEL_VAL[name][epoch], epoch)
            evaluate(run_dir, out / f"epoch_{epoch}", "test", "capitalization", VALSEL_TEST[name][epoch], epoch)
    evaluate("base", tiny_model, "validation", "capitalization_val", 2, None)
    evaluate("base", tiny_model, "test", "capitalization", 2, None)
    return exp


# Seeds as replicates: LoRA rank 8 vs 16, 3 seeds each (`ck design --seeds 3`), one epoch, 8 test
# words. Correct answers per seed (k of 8); the control gets 2.
SEEDS_N = 8
SEEDS_CORRECT = {8: (2, 3, 4), 16: (5, 7, 6)}


@pytest.fixture(scope="session")
def seeded(tmp_path_factory, tiny_model):
    import inspect_ai

    from tests.shared import quick_hf_batching

    from cruijff_kit.blueprints.capitalization.inspect_task import capitalization
    from cruijff_kit.cli import main
    from cruijff_kit.experiment.naming import run_directories
    from cruijff_kit.experiment.parse import load_experiment

    quick_hf_batching()  # tests/shared.py: no idle seconds per in-process evaluation
    root = tmp_path_factory.mktemp("seeded")
    data = _grid_data(root)
    exp = root / "seeded"
    assert main(["design", str(exp), "--model", f"tiny={tiny_model}", "--dataset", str(data), "--ranks", "8,16",
                 "--seeds", "3", "--task", f"capitalization={TASK}@0", "--gpus", "0"]) == 0
    _scaffold(root, exp)
    test = json.loads(data.read_text())["test"]
    plan = load_experiment(exp / "experiment_summary.md")

    def evaluate(run_dir, model_dir, correct):
        rows = [dict(r, output="" if i < correct else r["output"]) for i, r in enumerate(test)]
        path = root / f"data_{run_dir}.json"
        path.write_text(json.dumps({"test": rows}))
        inspect_ai.eval(capitalization(data_path=str(path), scorer="includes"), model=f"hf/{model_dir}",
                        model_args={"do_sample": False}, max_tokens=4, log_dir=str(exp / run_dir / "eval" / "logs"),
                        display="none")

    dirs = run_directories(plan, str(exp / "experiment_summary.md"))
    for run in plan.runs:
        if not run.finetuned:
            continue
        rank, seed = run.value("lora_rank"), run.value("seed")
        run_dir = dirs[run.name]
        out = _output_dir(exp, run_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "epoch_0").symlink_to(tiny_model, target_is_directory=True)
        evaluate(run_dir, out / "epoch_0", SEEDS_CORRECT[rank][seed - 1234])
    evaluate("base", tiny_model, 2)
    return exp
