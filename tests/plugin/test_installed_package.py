"""ck from a built wheel, installed into a fresh venv outside the checkout: templates, constraints
and task files come from the package (importlib.resources), not from a repo next to it.
design -> scaffold -> run -> analyze of a one-run experiment with its control, for real."""
from __future__ import annotations

import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _sh(argv, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=900, **kw)
    assert r.returncode == 0, f"{argv}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv (no checkout on its path) with the wheel built from this checkout; the
    heavy dependencies come from the test venv's site-packages as a plain path entry (no .pth of
    that venv runs, so the checkout's editable install is not seen)."""
    tmp = tmp_path_factory.mktemp("wheel")
    _sh([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp / "dist"), str(ROOT)])
    wheel = next((tmp / "dist").glob("cruijff_kit-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "cruijff_kit/_templates/finetune.slurm.j2" in names
    assert "cruijff_kit/_data/constraints.txt" in names
    venv = tmp / "venv"
    _sh([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    target = _sh([str(py), "-c", "import site; print(site.getsitepackages()[0])"]).stdout.strip()
    (Path(target) / "_deps.pth").write_text(site.getsitepackages()[0] + "\n")
    _sh([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", str(wheel)])
    return venv


def test_installed_ck_runs_an_experiment_outside_the_checkout(installed, tmp_path):
    from cruijff_kit.blueprints.capitalization.generate import generate
    from cruijff_kit.tiny_model import make_tiny_model

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "CK_LOCAL_CONFIG")}
    env.update(PATH=f"{installed / 'bin'}:{env.get('PATH', '')}", CK_EXECUTOR="local", OMP_NUM_THREADS="1")
    ck = str(installed / "bin" / "ck")
    where = _sh([str(installed / "bin" / "python"), "-c", "import cruijff_kit; print(cruijff_kit.__file__)"],
                cwd=work, env=env).stdout.strip()
    assert where.startswith(str(installed)) and not where.startswith(str(ROOT)), where

    model = make_tiny_model(work / "model", seed=0, hidden=32, layers=1, heads=2, kv_heads=2,
                            intermediate=64, vocab_size=2048, copy=True)
    data = work / "data.json"
    generate(data, n=40, seed=0, splits=(0.6, 0.2, 0.2))
    (work / "claude.local.md").write_text(f"# test\n- venv: {installed}\n- slurm_cpus: 1\n")
    env["CK_LOCAL_CONFIG"] = str(work / "claude.local.md")
    task = "capitalization=" + str(Path(where).parent / "blueprints/capitalization/inspect_task.py") + "@0"
    exp = work / "exp"
    _sh([ck, "design", str(exp), "--model", f"tiny={model}", "--dataset", str(data), "--ranks", "4",
         "--lrs", "3e-3", "--epochs", "1", "--batch-sizes", "8", "--gpus", "0", "--task", task,
         "--system-prompt", "Capitalize the word."], cwd=work, env=env)
    _sh([ck, "scaffold", str(exp)], cwd=work, env=env)
    slurm = (exp / "rank4" / "finetune.slurm").read_text()
    assert str(installed) in slurm and str(ROOT) not in slurm
    _sh([ck, "run", str(exp), "--executor", "local", "--poll", "1"], cwd=work, env=env)
    r = _sh([ck, "analyze", str(exp), "--json"], cwd=work, env=env)
    assert (exp / "analysis" / "report.md").is_file()
    assert "rank4" in (exp / "analysis" / "results.md").read_text()
    assert list((exp / "base" / "eval" / "logs").glob("*.eval")), r.stdout[-2000:]
