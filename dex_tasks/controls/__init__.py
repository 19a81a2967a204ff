"""Deploy controls: freeze windows and soak time, as pure functions of (config, history, now).

Locks live in :mod:`dex_tasks.gitops.locks` (they are refs on origin); what the writing tasks
ask of all three together is :mod:`dex_tasks.controls.guard`.
"""
