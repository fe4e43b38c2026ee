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


@pytest.fixture(scope="session")
def experiment(tmp_path_factory):
    import inspect_ai

    from cruijff_kit.blueprints.capitalization.generate import generate
    from cruijff_kit.blueprints.capitalization.inspect_task import capitalization
    from cruijff_kit.cli import main
    from cruijff_kit.tiny_model import make_tiny_model

    root = tmp_path_factory.mktemp("analyze")
    model = make_tiny_model(root / "model")
    data = generate(root / "data.json", n=40, seed=0)
    exp = root / "exp"
    assert main(["design", str(exp), "--model", f"tiny={model}", "--dataset", str(data), "--ranks", "8,16",
                 "--lrs", "1e-4,1e-3", "--task", f"capitalization={TASK}@0", "--gpus", "0"]) == 0
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

    import yaml

    for run_dir, losses in LOSSES.items():
        out = Path(yaml.safe_load((exp / run_dir / "setup_finetune.yaml").read_text())["output_dir"])
        (out / "logs").mkdir(parents=True, exist_ok=True)
        lines = [f"Step {i + 1} | loss:{v} lr:0.0001 tokens_per_second_per_gpu:100.0 " for i, v in enumerate(losses)]
        # a retried job starts a new file: its step 2 replaces the first attempt's
        (out / "logs" / "log_1000.txt").write_text(f"Step 1 | loss:9.0 lr:0.0001 \nStep 2 | loss:9.0 \n")
        (out / "logs" / "log_2000.txt").write_text("\n".join(lines) + "\n")

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
            model_dir.symlink_to(model, target_is_directory=True)
        inspect_ai.eval(capitalization(data_path=str(run_data), scorer="includes"), model=f"hf/{model_dir}",
                        model_args={"do_sample": False}, max_tokens=4, limit=4,
                        log_dir=str(exp / run_dir / "eval" / "logs"), display="none")
    corrupt = exp / "rank16_lr1e-4" / "eval" / "logs" / "2026-01-01T00-00-00_capitalization_broken.eval"
    corrupt.parent.mkdir(parents=True, exist_ok=True)
    corrupt.write_bytes(b"PK\x03\x04 this is not a complete zip archive")
    return exp
