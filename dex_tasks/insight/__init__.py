"""Delivery insight: DORA metrics from git, pipeline metrics from GitHub, release notes,
notifications and GitHub Deployments. Domain code: tasks import it, it never imports tasks."""
