"""run-experiment: plan (jobs from disk), ledger, orchestrator/monitor, recovery, supervisor.

Shared by both executors; backends only submit / poll / cancel (cruijff_kit.executors.core).
"""
