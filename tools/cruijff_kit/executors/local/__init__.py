"""Local backend: runs the generated `.slurm` scripts with bash on this machine."""
from .executor import LocalExecutor, detect_gpus  # noqa: F401
