"""Supply chain: what was built, scanned and is really in the registry (digests, scan verdicts).

Domain code over :mod:`dex_tasks.tools.oci`; it never imports ``tasks``.
"""
