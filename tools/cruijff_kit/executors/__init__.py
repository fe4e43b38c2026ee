"""One executor interface (core.py), two backends: local/ and slurm/ (after submitit)."""
