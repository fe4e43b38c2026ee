"""The inspect-ai side at evaluation time: one model provider and the launcher the eval scripts run."""
