"""Dogfooding: this repository's nox sessions are the ones every consumer gets."""

from __future__ import annotations

import nox

import dex_tasks.nox  # noqa: F401 - importing registers one session per task

nox.options.error_on_external_run = True
