"""Session fixtures for the TRL tests: the shrunk, format-faithful Qwen3 and Gemma 3 checkpoints
(tests/trl/hub_models.py), each built once (~10-20 s) on first use."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def qwen3_model(tmp_path_factory) -> Path:
    from tests.trl.hub_models import make_qwen3_06b

    return make_qwen3_06b(tmp_path_factory.mktemp("hub") / "Qwen3-0.6B")


@pytest.fixture(scope="session")
def gemma3_model(tmp_path_factory) -> Path:
    from tests.trl.hub_models import make_gemma3_1b_it

    return make_gemma3_1b_it(tmp_path_factory.mktemp("hub") / "gemma-3-1b-it")


@pytest.fixture(scope="session")
def cap_data(tmp_path_factory) -> Path:
    from cruijff_kit.blueprints.capitalization.generate import generate

    return generate(tmp_path_factory.mktemp("data") / "cap.json", n=40)
