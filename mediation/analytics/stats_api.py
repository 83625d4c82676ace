"""Supervision routes (issue #7): stats_api."""
