"""Supervision routes (issue #7): risk_views."""
