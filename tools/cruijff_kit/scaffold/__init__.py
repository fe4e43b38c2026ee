"""scaffold-experiment: the orchestrator and its two workers (torchtune, inspect)."""
