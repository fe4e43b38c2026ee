"""`ck setup`: claude.local.md from what this machine and its cluster reveal.

probe.py   running external commands through one replaceable object (tests swap PATH or the probe)
detect.py  what can be detected: SLURM partitions/accounts/GPU types, conda/venv, GPUs, scratch
write.py   detected values + answers to the questions detection could not settle -> the file
"""
