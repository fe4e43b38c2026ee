"""A finished job's duration is fixed: `ck status` must not show it growing between calls."""
from cruijff_kit.state.ledger import duration


def test_finished_job_without_an_end_time_keeps_its_duration():
    entry = {"updated": "2026-01-01T10:05:00",
             "attempts": [{"started": "2026-01-01T10:00:00", "ended": None, "state": "COMPLETED"}]}
    assert duration(entry) == duration(entry) == "5m 0s"


def test_running_job_counts_up_and_ended_job_uses_its_end():
    running = {"attempts": [{"started": "2000-01-01T00:00:00", "ended": None, "state": "RUNNING"}]}
    assert duration(running).startswith(("2", "3")) and "h" in duration(running)  # years of hours: up to now
    ended = {"attempts": [{"started": "2026-01-01T10:00:00", "ended": "2026-01-01T10:00:42", "state": "FAILED"}]}
    assert duration(ended) == "42s"
