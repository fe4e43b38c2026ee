"""An adapter trained elsewhere (no ck_checkpoint.json naming its base) is evaluated by an
eval-only run with the base given (eval script --base-model): the merge equals the one from a
recorded base; without a base it is refused, and a base that contradicts the record too."""
from __future__ import annotations

import shutil

import pytest

from tests.families.evalcheck import setup_for
from tests.families.evalcheck import fine_tune
from cruijff_kit.errors import CkError
from cruijff_kit.finetune.merge import materialise
from cruijff_kit.state.artifacts import is_adapter_only

pytestmark = pytest.mark.slow  # real training, evaluation or training processes: `make test`, not test-fast

NAME = "Qwen2.5-0.5B-Instruct"


def test_adapter_merges_with_a_given_base(family_model, words, tmp_path):
    from safetensors.torch import load_file

    base = family_model(NAME)
    fine_tune({**setup_for(base, words, tmp_path / "out"), "max_steps_per_epoch": 2, "learning_rate": 5e-2},
              tmp_path / "run")
    epoch = tmp_path / "out" / "epoch_0"
    assert is_adapter_only(epoch)
    recorded = materialise(epoch, tmp_path / "m1")
    foreign = tmp_path / "theirs" / "epoch_0"  # as another tool would hand it over: no ck record
    shutil.copytree(epoch, foreign)
    (foreign / "ck_checkpoint.json").unlink()
    with pytest.raises(CkError, match="does not record its base model"):
        materialise(foreign, tmp_path / "m0")
    given = materialise(foreign, tmp_path / "m2", base_model=base)
    a = {k: v for f in sorted(recorded.glob("*.safetensors")) for k, v in load_file(f).items()}
    b = {k: v for f in sorted(given.glob("*.safetensors")) for k, v in load_file(f).items()}
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    with pytest.raises(CkError, match="not on the given base model"):
        materialise(epoch, tmp_path / "m3", base_model=tmp_path)
    # the merged copy is named after the checkpoint it merges (an eval log of epoch_1 names epoch_1)
    later = tmp_path / "out2" / "epoch_1"
    shutil.copytree(epoch, later)
    merged = materialise(later, tmp_path / "m4")
    assert merged == tmp_path / "m4" / "epoch_1" and sorted(merged.glob("*.safetensors"))
    assert not (tmp_path / "m4" / "epoch_0").exists()
