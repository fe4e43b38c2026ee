"""The real local SLURM cluster (tests/slurm/conftest.py starts it, or says why it cannot)."""
from tests.slurm.conftest import _skip_reason, slurm_cluster  # noqa: F401  (fixture re-export)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _skip_reason and _skip_reason[0]:
        terminalreporter.write_sep("=", "tests/setup: SLURM tests skipped")
        terminalreporter.write_line(f"local SLURM cluster unavailable: {_skip_reason[0]}")
