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
import importlib.abc  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests import finished_experiment as finished  # noqa: E402
from tests.shared import build_once  # noqa: E402
from tests.xdist_groups import assign_groups  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model(request, tmp_path_factory) -> Path:
    """The default tiny Qwen2.5-format model (tiny_model.py), built once per session."""
    def build(where: Path) -> str:
        from cruijff_kit.tiny_model import make_tiny_model

        return str(make_tiny_model(where))

    return Path(build_once(request, tmp_path_factory, "tiny-qwen", build))


@pytest.fixture
def design_inputs(tmp_path, monkeypatch) -> Path:
    """A directory to design plans in without a model: claude.local.md, the local executor, and a
    small dataset with train / validation / test splits (data.json)."""
    monkeypatch.setenv("CK_LOCAL_CONFIG", str(tmp_path / "claude.local.md"))
    monkeypatch.setenv("CK_EXECUTOR", "local")
    (tmp_path / "claude.local.md").write_text("- slurm_partition: debug\n")
    rows = [{"input": "a", "output": "A"}] * 8
    (tmp_path / "data.json").write_text(json.dumps({"train": rows, "validation": rows[:4], "test": rows[:4]}))
    return tmp_path


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


@pytest.fixture(scope="session")
def _finished_build(request, tmp_path_factory, tiny_model) -> finished.Finished:
    """The session's one finished tiny experiment (tests/finished_experiment.py), built once across workers."""
    return finished.load(build_once(request, tmp_path_factory, "finished-experiment",
                                    lambda where: finished.build(where, tiny_model)))


@pytest.fixture
def finished_experiment(_finished_build):
    """The finished experiment, to read (never change: tests that do take `mutable_experiment`)."""
    with finished.reading(_finished_build) as fin:
        yield fin


@pytest.fixture
def mutable_experiment(_finished_build):
    """The finished experiment, to change in place; put back as it was built when the test ends."""
    with finished.changing(_finished_build) as fin:
        yield fin


def pytest_configure(config):
    # --dist loadgroup hands out groups in the order of the collection (tests/xdist_groups.py sorts
    # it, heaviest first); xdist's default reorders them by test count, which put the one long
    # agent scenario (five tests) last, leaving a worker idle while it ran
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False
    # the test process loads checkpoints with transformers, which hands adapter files to PEFT:
    # the product's own compatibility step (PEFT 0.21 next to torchtune's torchao 0.15), taken when
    # PEFT is first imported (importing it here cost every pytest process ~6 s of torch,
    # transformers and PEFT imports, test-fast included)
    sys.meta_path.insert(0, _PeftCompatOnImport())


class _PeftCompatOnImport(importlib.abc.MetaPathFinder):
    """Runs peft_without_old_torchao() right after `peft` is imported, once."""

    def find_spec(self, name, path=None, target=None):
        if name != "peft":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            from cruijff_kit.finetune.peft_compat import peft_without_old_torchao

            peft_without_old_torchao()

        spec.loader.exec_module = exec_module
        return spec


# tryfirst: the marks must exist before pytest-xdist's worker reads them in its own (plain)
# pytest_collection_modifyitems (xdist/remote.py), which pluggy calls before this conftest's otherwise.
# On pytest 9.2 that hook no longer changes the test ids at all: tests/xdist_groups.py writes the
# "@group" suffix itself (measured before: a group's tests ran on both workers).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """--dist loadgroup: one xdist group per unit of shared work, the heaviest first (tests/xdist_groups.py)."""
    assign_groups(config, items, Path(__file__).parent)


# `ck analyze` writes every result into a per-user store (analyze/store.py): tests use their own,
# never the machine user's ~/.cache/cruijff_kit/results.sqlite
if "CK_RESULTS_STORE" not in os.environ:
    import tempfile

    os.environ["CK_RESULTS_STORE"] = os.path.join(tempfile.mkdtemp(prefix="ck-results-"), "results.sqlite")
