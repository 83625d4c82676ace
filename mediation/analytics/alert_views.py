"""Supervision routes (issue #7): alert_views."""
