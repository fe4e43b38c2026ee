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

# `ck analyze` writes every result into a per-user store (analyze/store.py): tests use their own,
# never the machine user's ~/.cache/cruijff_kit/results.sqlite
if "CK_RESULTS_STORE" not in os.environ:
    import tempfile

    os.environ["CK_RESULTS_STORE"] = os.path.join(tempfile.mkdtemp(prefix="ck-results-"), "results.sqlite")
