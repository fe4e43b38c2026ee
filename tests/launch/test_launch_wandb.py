"""`ck launch wandb inject / revert`: diff first, .backup, byte-identical revert, real offline run."""
from __future__ import annotations

import ast
import json
import sys
import subprocess
from pathlib import Path

import pytest

from .training_repos import DISTRIBUTED, HF_TRAINER, LIGHTNING, write_repo

pytestmark = pytest.mark.slow  # real training, evaluation or training processes: `make test`, not test-fast


def test_preview_changes_nothing_then_apply_and_revert_byte_identical(ck, plain_repo):
    script = plain_repo / "train.py"
    # CRLF endings and a non-ASCII comment: revert must give back exactly these bytes
    original = script.read_bytes().replace(b"\n", b"\r\n").replace(b"CPU.", "CPU \u2014 caf\u00e9.".encode())
    script.write_bytes(original)

    preview = ck("launch", "wandb", "inject", script, "--project", "demo", "--json")
    assert preview.rc == 0, preview
    plan = preview.json
    assert plan["applied"] is False and plan["framework"] == "pytorch"
    assert "+import wandb" in plan["diff"].replace("\r", "")
    assert script.read_bytes() == original
    assert not Path(plan["backup"]).exists()

    applied = ck("launch", "wandb", "inject", script, "--project", "demo", "--yes", "--json").json
    assert applied["applied"] is True and applied["diff"] == plan["diff"]
    assert Path(applied["backup"]).read_bytes() == original
    changed = script.read_bytes()
    assert changed != original and b"\r\n" in changed and b"\n" not in changed.replace(b"\r\n", b"")
    tree = ast.parse(changed)
    calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert {"wandb.init", "wandb.log", "wandb.finish"} <= calls
    assert [e["what"] for e in applied["edits"]] == ["import", "init", "log train", "log eval", "finish"]

    again = ck("launch", "wandb", "inject", script, "--yes")
    assert again.rc == 2 and "already exists" in again.err

    reverted = ck("launch", "wandb", "revert", script, "--json")
    assert reverted.rc == 0, reverted
    assert script.read_bytes() == original
    assert not Path(applied["backup"]).exists()
    assert ck("launch", "wandb", "revert", script).rc == 2  # nothing left to revert


def test_injected_plain_loop_logs_to_an_offline_wandb_run(ck, plain_repo, wait_done, tmp_path):
    assert ck("launch", "wandb", "inject", plain_repo, "--project", "ck-test", "--yes").rc == 0
    started = ck("launch", "start", plain_repo, "--command", "python train.py --epochs 2 --data x",
                 "--python", sys.executable, "--wandb-project", "ck-test", "--wait", "0", "--json")
    assert started.rc == 0, started
    final = wait_done(started.json["run_id"], timeout=150)  # wandb startup is slow on a loaded machine
    assert final["exit_code"] == 0, ck("launch", "logs", started.json["run_id"]).out

    runs = list((tmp_path / "wandb-dir" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    datastores = list(runs[0].glob("*.wandb"))
    assert len(datastores) == 1 and datastores[0].stat().st_size > 0

    report = ck("launch", "diagnose", started.json["run_id"], "--json").json
    assert report["failure"] is None
    assert report["wandb"]["run_dir"] == str(runs[0])
    assert report["wandb"]["sync_command"] == f"wandb sync {runs[0]}"
    metrics = report["wandb"]["metrics"]
    assert {"train/loss", "train/lr", "eval/val_loss", "epoch"} <= set(metrics)
    assert float(metrics["train/lr"]) == 0.05


def test_offline_metrics_read_from_the_wandb_file_while_running(tmp_path):
    """Offline runs write only the .wandb log until they finish; diagnose reads it directly."""
    import subprocess
    import sys

    script = tmp_path / "log3.py"
    script.write_text("import wandb\nwandb.init(project='p')\n"
                      "for i in range(3):\n    wandb.log({'train/loss': 1.0 / (i + 1)})\nwandb.finish()\n")
    subprocess.run([sys.executable, str(script)], cwd=tmp_path, check=True, capture_output=True, timeout=60)
    from cruijff_kit.launch.wandb_runs import latest_metrics

    run_dir = next((tmp_path / "wandb-dir" / "wandb").glob("offline-run-*"))
    metrics, source = latest_metrics(str(run_dir), log_text="")
    assert source.endswith(".wandb")
    assert metrics["train/loss"] == 1.0 / 3 and metrics["_step"] == 2


def test_hf_trainer_shortcut_adds_report_to(ck, tmp_path):
    repo = write_repo(tmp_path / "hf", {"train.py": HF_TRAINER})
    result = ck("launch", "wandb", "inject", repo / "train.py", "--yes", "--json").json
    assert result["framework"] == "hf_trainer"
    text = (repo / "train.py").read_text()
    call = next(n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Call)
                and ast.unparse(n.func) == "TrainingArguments")
    assert {k.arg: ast.literal_eval(k.value) for k in call.keywords}["report_to"] == "wandb"
    assert "import wandb" not in text  # the Trainer does the logging itself
    assert ck("launch", "wandb", "revert", repo / "train.py").rc == 0
    assert (repo / "train.py").read_text() == HF_TRAINER


def test_lightning_shortcut_adds_wandb_logger(ck, tmp_path):
    repo = write_repo(tmp_path / "lit", {"main.py": LIGHTNING})
    result = ck("launch", "wandb", "inject", repo, "--project", "lit", "--json").json
    assert result["framework"] == "lightning" and result["file"].endswith("main.py")
    assert "+from lightning.pytorch.loggers import WandbLogger" in result["diff"]
    assert 'logger=WandbLogger(project=os.environ.get("WANDB_PROJECT", "lit"))' in result["diff"]
    assert (repo / "main.py").read_text() == LIGHTNING  # preview only


def test_distributed_loop_is_guarded_for_rank_0(ck, tmp_path):
    repo = write_repo(tmp_path / "ddp", {"train.py": DISTRIBUTED})
    result = ck("launch", "wandb", "inject", repo / "train.py", "--yes", "--json").json
    assert result["distributed"] is True
    tree = ast.parse((repo / "train.py").read_text())
    wandb_calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                   and ast.unparse(n.func) in ("wandb.init", "wandb.log", "wandb.finish")]
    assert len(wandb_calls) == 3
    parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
    for call in wandb_calls:
        node = call
        while not isinstance(node, ast.If):
            node = parents[node]
        assert ast.unparse(node.test) == "_is_main_process()"


def test_script_already_using_wandb_is_refused(ck, tmp_path):
    repo = write_repo(tmp_path / "wb", {"train.py": "import wandb\nwandb.init()\n"})
    result = ck("launch", "wandb", "inject", repo / "train.py", "--json")
    assert result.rc == 2
    assert "already uses wandb" in result.json["error"] and result.json["line"] == 1


def test_module_level_loop_without_final_newline(ck, tmp_path):
    """The diff is a real `diff -u` (patch accepts it) and the edited script matches it."""
    source = ("import torch\nm = torch.nn.Linear(2, 1)\nopt = torch.optim.SGD(m.parameters(), lr=0.1)\n"
              "for step in range(3):\n    loss = m(torch.ones(1, 2)).sum()\n    loss.backward()\n    opt.step()")
    repo = write_repo(tmp_path / "m", {"train.py": source})
    preview = ck("launch", "wandb", "inject", repo / "train.py", "--json").json
    assert "\\ No newline at end of file" in preview["diff"]
    copy = tmp_path / "copy.py"
    copy.write_text(source)
    subprocess.run(["patch", "-s", str(copy)], input=preview["diff"], text=True, check=True, timeout=30)

    assert ck("launch", "wandb", "inject", repo / "train.py", "--yes").rc == 0
    injected = (repo / "train.py").read_text()
    assert injected == copy.read_text()
    assert injected.endswith("    wandb.log({\"train/loss\": loss.item(), \"train/lr\": opt.param_groups[0][\"lr\"]})\n"
                             "wandb.finish()\n")
    assert ck("launch", "wandb", "revert", repo / "train.py").rc == 0
    assert (repo / "train.py").read_bytes() == source.encode()


def test_keras_shortcut_keeps_existing_callbacks(ck, tmp_path):
    source = ("from tensorflow import keras\n\nmodel = keras.Sequential([keras.layers.Dense(1)])\n"
              "model.compile(optimizer='adam', loss='mse')\ncb = [keras.callbacks.EarlyStopping()]\n"
              "history = model.fit(x, y, epochs=2, callbacks=cb)\n")
    repo = write_repo(tmp_path / "k", {"train.py": source})
    result = ck("launch", "wandb", "inject", repo / "train.py", "--yes", "--json").json
    assert result["framework"] == "keras"
    tree = ast.parse((repo / "train.py").read_text())
    fit = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) == "model.fit")
    assert ast.unparse(fit.keywords[-1].value) == "[*cb, WandbMetricsLogger()]"
    order = [ast.unparse(s) for s in tree.body if isinstance(s, (ast.Expr, ast.Assign))]
    assert order[-3].startswith("wandb.init(") and order[-1] == "wandb.finish()"


# Two common shapes of gradient accumulation, each printing what a careful repo prints: the mean of
# the unscaled micro-batch losses of every optimizer step.
ACCUM_INNER_LOOP = '''\
import torch

torch.manual_seed(0)
model = torch.nn.Linear(3, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
gradient_accumulation_steps = 4
for step in range(3):
    running = 0.0
    for micro_step in range(gradient_accumulation_steps):
        x = torch.randn(8, 3)
        with torch.enable_grad():
            loss = (model(x) - x.sum(1, keepdim=True)).pow(2).mean()
            running += loss.item()
            loss = loss / gradient_accumulation_steps
        loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    print(f"step {step} loss {running / gradient_accumulation_steps!r}", flush=True)
'''
ACCUM_MODULO = '''\
import torch


def main():
    torch.manual_seed(1)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    accum = 3
    running, seen, step = 0.0, 0, 0
    for i in range(9):
        x = torch.randn(8, 3)
        loss = (model(x) - 1.0).pow(2).mean() / accum
        running += loss.item() * accum
        seen += 1
        loss.backward()
        if (i + 1) % accum == 0:
            opt.step()
            opt.zero_grad()
            print(f"step {step} loss {running / seen!r}", flush=True)
            running, seen, step = 0.0, 0, step + 1


if __name__ == "__main__":
    main()
'''


def _history(run_dir: Path, key: str) -> list[float]:
    """Every value logged under `key`, in order, from the offline run's .wandb file."""
    from wandb.proto import wandb_internal_pb2 as pb

    from cruijff_kit.launch.wandb_runs import _records

    values = []
    for raw in _records(next(run_dir.glob("*.wandb")).read_bytes()):
        record = pb.Record()
        record.ParseFromString(raw)
        if record.WhichOneof("record_type") == "history":
            values += [json.loads(i.value_json) for i in record.history.item if (i.key or "/".join(i.nested_key)) == key]
    return values


@pytest.mark.parametrize("source,steps", [(ACCUM_INNER_LOOP, 3), (ACCUM_MODULO, 3)], ids=["inner-loop", "modulo"])
def test_injected_loss_equals_printed_loss_under_gradient_accumulation(ck, tmp_path, source, steps):
    repo = write_repo(tmp_path / "accum", {"train.py": source})
    result = ck("launch", "wandb", "inject", repo / "train.py", "--yes", "--json")
    assert result.rc == 0, result
    assert {"loss sum init", "loss capture", "log train"} <= {e["what"] for e in result.json["edits"]}
    proc = subprocess.run([sys.executable, "train.py"], cwd=repo, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    printed = [float(line.split()[-1]) for line in proc.stdout.splitlines() if line.startswith("step ")]
    run_dir = next((tmp_path / "wandb-dir" / "wandb").glob("offline-run-*"))
    logged = _history(run_dir, "train/loss")
    assert len(printed) == steps and len(logged) == steps  # one value per optimizer step
    assert logged == pytest.approx(printed, rel=1e-5)  # the unscaled mean, not 1/accum of the last one


def test_revert_after_a_later_edit_refuses_and_shows_the_edit(ck, plain_repo):
    script = plain_repo / "train.py"
    original = script.read_bytes()
    assert ck("launch", "wandb", "inject", script, "--yes").rc == 0
    injected = script.read_text()
    script.write_text(injected.replace("lr=args.lr", "lr=args.lr * 2"))  # the user's own edit, after inject

    refused = ck("launch", "wandb", "revert", script, "--json")
    assert refused.rc == 2, refused
    error = refused.json["error"]
    assert "changed since `ck launch wandb inject`" in error
    assert "-    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)" in error
    assert "+    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr * 2)" in error
    assert "--force" in refused.json["hint"]
    assert "lr=args.lr * 2" in script.read_text() and (plain_repo / "train.py.backup").exists()  # untouched

    forced = ck("launch", "wandb", "revert", script, "--force", "--json")
    assert forced.rc == 0, forced
    assert script.read_bytes() == original
    assert forced.json["notes"] == ["edits made after inject were discarded (--force)"]
