"""Adapter-only epochs (the default) evaluate exactly like merged ones, and the merge is right:
the merged model's loss (transformers) equals the LoRA model's loss (torchtune) on the training rows."""
from __future__ import annotations

import json
import shutil

import pytest

from tests.families.evalcheck import eval_inputs, fine_tune, setup_for, training_items
from cruijff_kit.finetune.merge import materialise
from cruijff_kit.state.artifacts import has_weights, is_adapter_only
from cruijff_kit.finetune.models import resolve_model

pytestmark = pytest.mark.slow  # real training, evaluation or training processes: `make test`, not test-fast

NAME = "Llama-3.1-8B-Instruct"  # untied, sharded, q/k permuted between HF and torchtune: the hard case


@pytest.fixture(scope="module")
def merged_run(family_model, words, tmp_path_factory):
    base = family_model(NAME)
    tmp = tmp_path_factory.mktemp("adapter")
    setup = {**setup_for(base, words, tmp / "out"), "max_steps_per_epoch": 3, "save_merged_weights": True,
             "learning_rate": 5e-2}
    cfg = fine_tune(setup, tmp / "run")
    return base, cfg, tmp / "out" / "epoch_0", tmp


def _ce(logits, labels):
    import torch

    shifted = torch.cat([labels[1:], torch.tensor([-100])])
    return torch.nn.functional.cross_entropy(logits.float(), shifted, ignore_index=-100, reduction="sum"), \
        int((shifted != -100).sum())


def test_merged_loss_in_transformers_equals_lora_loss_in_torchtune(merged_run):
    import torch
    from omegaconf import OmegaConf
    from torchtune import config as tt_config
    from torchtune.training import FullModelHFCheckpointer
    from transformers import AutoModelForCausalLM

    base, cfg, epoch, tmp = merged_run
    spec = resolve_model(str(base))
    lora = tt_config.instantiate(OmegaConf.create(cfg["model"]))
    state = FullModelHFCheckpointer(checkpoint_dir=str(base), checkpoint_files=spec.checkpointer["checkpoint_files"],
                                    model_type=spec.checkpointer["model_type"],
                                    output_dir=str(tmp / "unused")).load_checkpoint()["model"]
    state.update(torch.load(epoch / "adapter_model.pt", weights_only=True))
    missing, unexpected = lora.load_state_dict(state, strict=False)
    assert not unexpected and not [k for k in missing if "lora" in k or k.endswith("weight")]
    from cruijff_kit.evaluate.launch import weights_without_adapter

    # the merged weights alone (with PEFT installed, transformers would load the adapter beside them too)
    merged = AutoModelForCausalLM.from_pretrained(weights_without_adapter(epoch, tmp / "weights"), dtype=torch.float32)
    tt_sum = hf_sum = 0.0
    n_total = 0
    with torch.no_grad():
        for item in training_items(cfg, "train"):
            tokens, labels = torch.tensor(item["tokens"]), torch.tensor(item["labels"])
            s1, n = _ce(lora(tokens[None])[0], labels)
            s2, _ = _ce(merged(input_ids=tokens[None]).logits[0], labels)
            tt_sum, hf_sum, n_total = tt_sum + float(s1), hf_sum + float(s2), n_total + n
    assert abs(tt_sum / n_total - hf_sum / n_total) < 1e-4, (tt_sum / n_total, hf_sum / n_total)


def test_adapter_only_epoch_evaluates_like_the_merged_one(merged_run, words):
    import torch
    from safetensors.torch import load_file

    base, cfg, epoch, tmp = merged_run
    # the same epoch as an adapter-only save would leave it
    adapter_dir = tmp / "adapter_only" / "epoch_0"
    shutil.copytree(epoch, adapter_dir, ignore=shutil.ignore_patterns("model*.safetensors", "model.safetensors.index.json"))
    record = json.loads((adapter_dir / "ck_checkpoint.json").read_text())
    record["adapter_only"] = True
    (adapter_dir / "ck_checkpoint.json").write_text(json.dumps(record))
    assert is_adapter_only(adapter_dir) and not has_weights(adapter_dir) and not is_adapter_only(epoch)

    out = materialise(adapter_dir, tmp / "materialised")
    index = json.loads((epoch / "model.safetensors.index.json").read_text())
    recipe = {k: v for f in set(index["weight_map"].values()) for k, v in load_file(str(epoch / f)).items()}
    ours = {k: v for f in out.glob("model*.safetensors") for k, v in load_file(str(f)).items()}
    assert set(ours) == set(recipe)
    assert max((ours[k] - recipe[k]).abs().max().item() for k in recipe) < 1e-6
    assert any((recipe[k] - v).abs().max() > 0 for k, v in load_file(str(base / sorted(set(
        json.loads((base / "model.safetensors.index.json").read_text())["weight_map"].values()))[0])).items()
        if k in recipe and k.endswith("proj.weight")), "nothing was merged"

    _, merged_log = eval_inputs(epoch, "llama3", words, "", tmp / "s1", tmp / "l1")
    seen, adapter_log = eval_inputs(adapter_dir, "llama3", words, "", tmp / "s2", tmp / "l2")
    assert adapter_log.eval.metadata["ck_weights"].startswith("adapter merged")
    assert merged_log.eval.metadata["ck_weights"] == "merged checkpoint"
    outputs = lambda log: {s.id: s.output.completion for s in log.samples}  # noqa: E731
    assert outputs(adapter_log) == outputs(merged_log)
    scores = lambda log: [(m.name, m.value) for r in log.results.scores for m in r.metrics.values()]  # noqa: E731
    assert scores(adapter_log) == scores(merged_log)


def test_est_disk_is_what_torchtune_wrote(merged_run):
    """The design's Est. Disk, on a real-shaped untied GQA model: merged save and adapter-only."""
    from cruijff_kit.experiment.disk import planned_disk_bytes
    from cruijff_kit.finetune.config import with_defaults

    base, cfg, epoch, tmp = merged_run
    out = epoch.parent
    setup = with_defaults({**setup_for(base, tmp, out), "save_merged_weights": True})  # what training used
    files = [f for f in out.rglob("*") if f.is_file() and "logs" not in f.parts]
    written = sum(f.stat().st_size for f in files)
    shards = sum(f.stat().st_size for f in files if f.name.startswith("model") and f.suffix == ".safetensors")
    assert shards > 0.5 * written  # the merged weights dominate a merged save

    def planned(merged):
        return planned_disk_bytes(str(base), lambda k: {**setup, "save_merged_weights": merged}[k])

    assert abs(planned(True) - written) <= 0.05 * written, (planned(True), written)
    adapter_only = written - shards
    assert abs(planned(False) - adapter_only) <= 0.1 * adapter_only, (planned(False), adapter_only)
