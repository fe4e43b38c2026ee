"""Process-wide test settings: tiny models want one thread; nothing may reach a hub or wandb.ai."""
import os

# the real local SLURM cluster fixture (`slurm_cluster`), shared by every test folder
pytest_plugins = ["tests.slurm_cluster"]

for key, value in {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "WANDB_MODE": "offline",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(key, value)


# ---- fixtures shared by every test folder ----------------------------------------------------------
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.shared import build_once  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model(request, tmp_path_factory) -> Path:
    """The default tiny Qwen2.5-format model (tiny_model.py), built once per session."""
    def build(where: Path) -> str:
        from cruijff_kit.tiny_model import make_tiny_model

        return str(make_tiny_model(where))

    return Path(build_once(request, tmp_path_factory, "tiny-qwen", build))


@pytest.fixture(scope="session")
def demo_experiment(request, tmp_path_factory) -> tuple[Path, str]:
    """The bundled demo (`python -m cruijff_kit.demo`, what `make demo` runs), run once per session
    for every test that checks it: (experiment directory, its stdout). Tests read it, never change it."""
    def build(where: Path) -> dict:
        r = subprocess.run([sys.executable, "-m", "cruijff_kit.demo", "--out", str(where), "--max-parallel", "2"],
                           capture_output=True, text=True, timeout=1800,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
        if r.returncode != 0:
            raise RuntimeError(f"demo exit {r.returncode}\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
        return {"exp": str(where / "cap_demo"), "stdout": r.stdout}

    value = build_once(request, tmp_path_factory, "demo", build)
    return Path(value["exp"]), value["stdout"]


def pytest_configure(config):
    # the test process loads checkpoints with transformers, which hands adapter files to PEFT:
    # the product's own compatibility step (PEFT 0.21 next to torchtune's torchao 0.15)
    from cruijff_kit.finetune.peft_compat import peft_without_old_torchao

    peft_without_old_torchao()


# folders whose conftest builds heavy session fixtures (finished evaluations, format-faithful
# checkpoints): their tests share one worker, so each fixture is built once, not once per worker
SHARED_FIXTURE_FOLDERS = {"analyze", "families", "trl"}


def pytest_collection_modifyitems(config, items):
    """Mark the work tests share for `--dist loadgroup`: the SLURM tests (one cluster), a folder
    with heavy session fixtures, otherwise each module. Measured in CI here, pytest-xdist 3.8 still
    spread a group's tests over both workers; what must be built once uses tests/shared.build_once,
    which is correct whichever worker runs the tests (the other waits for the first one's build)."""
    root = Path(__file__).parent
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        if "slurm_cluster" in getattr(item, "fixturenames", ()) or item.get_closest_marker("slurm"):
            group = "slurm"
        else:
            rel = Path(str(item.fspath)).relative_to(root)
            group = rel.parts[0] if rel.parts[0] in SHARED_FIXTURE_FOLDERS else str(rel)
        item.add_marker(pytest.mark.xdist_group(group))
# `ck analyze` writes every result into a per-user store (analyze/store.py): tests use their own,
# never the machine user's ~/.cache/cruijff_kit/results.sqlite
if "CK_RESULTS_STORE" not in os.environ:
    import tempfile

    os.environ["CK_RESULTS_STORE"] = os.path.join(tempfile.mkdtemp(prefix="ck-results-"), "results.sqlite")
