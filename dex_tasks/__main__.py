"""``python -m dex_tasks``: the same CLI as the ``dex-tasks`` console script."""

from dex_tasks.cli import entry

entry()
