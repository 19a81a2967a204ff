"""dex-tasks: the DEX CI/CD runbook as tasks."""

__version__ = "0.1.0"
