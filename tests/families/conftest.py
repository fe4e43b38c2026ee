"""Session fixtures: the five format-faithful shrunk checkpoints (built once, ~40 s in all)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.families.evalcheck import words_dataset


@pytest.fixture(scope="session")
def model_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hub")


@pytest.fixture(scope="session")
def family_model(model_root):
    """family name -> directory, each built on first use."""
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            from tests.families import checkpoints

            built[name] = checkpoints.BUILDERS[name](model_root / name)
        return built[name]

    return get


@pytest.fixture(scope="session")
def words(tmp_path_factory) -> Path:
    return words_dataset(tmp_path_factory.mktemp("data") / "words.json")
