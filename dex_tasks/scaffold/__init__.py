"""Scaffolding: what ``init`` writes into a consumer repo (``init.py``, ``templates/``) and the
``demo`` sandbox that runs the whole runbook on one (``demo.py``, ``trivy-sample.json``)."""
